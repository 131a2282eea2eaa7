import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { unetForward } from '../../reference/unet/model.ts';
import { disposeParams, type UNetParams } from '../../reference/unet/params.ts';
import type { UNetConfig } from '../../reference/unet/config.ts';
import { ACTIVATIONS_FILE, IO_FILE, loadGoldenModel, nchwData, nhwc, readJson, tensorAt } from './golden.ts';

/** Golden README: rtol 1e−4, atol 1e−4 on outputs and activations (convolution summation order differs between backends). */
const UNET = override({ rtol: 1e-4, atol: 1e-4 }, 'float32 UNet vs PyTorch: convolution summation order differs between backends (golden README)');

/** Our capture names for the two hook names that are not module names. */
const RENAME: Record<string, string> = { 'get_timestep_embedding(t, ch)': 'timestep_embedding', output: 'conv_out' };

let config: UNetConfig;
let params: UNetParams;
beforeAll(() => {
  const m = loadGoldenModel();
  config = m.config;
  params = m.params;
  expect(m.config).toEqual(m.ioConfig); // the two files describe the same model
  for (const p of Object.values(params)) tf.keep(p);
});
afterAll(() => disposeParams(params));

describe('6.5 The UNet against the PyTorch port (golden ho_unet_small)', () => {
  it('loading the port’s state dict, reproduces its output for integer and float timesteps  [unet.golden.output]', async () => {
    const io = readJson(IO_FILE);
    const x = nhwc(tensorAt(io, 'inputs.x', IO_FILE));
    const t = tensorAt(io, 'inputs.t', IO_FILE);
    for (const [dtype, key] of [
      ['int32', 'model(x, t_int64)'],
      ['float32', 'model(x, t_float32)'],
    ] as const) {
      const tt = tf.tensor1d(Array.from(t.data), dtype);
      const y = unetForward(config, params, x, tt);
      expect(await nchwData(y)).toBeCloseWithin(tensorAt(io, `outputs.${key}`, IO_FILE).data, UNET, { shape: [2, 1, 16, 16], what: key });
      tf.dispose([y, tt]);
    }
    x.dispose();
  });

  it('reproduces every one of the 164 recorded activations, in NCHW after transposing ours  [unet.golden.activations]', async () => {
    const io = readJson(IO_FILE);
    const acts = readSafetensors(ACTIVATIONS_FILE).tensors;
    expect(acts.size).toBe(164);
    const got = new Map<string, tf.Tensor>();
    const x = nhwc(tensorAt(io, 'inputs.x', IO_FILE));
    const t = tf.tensor1d(Array.from(tensorAt(io, 'inputs.t', IO_FILE).data), 'int32');
    const y = unetForward(config, params, x, t, { capture: (n, v) => got.set(n, v) });
    got.set('input.x', x);
    let compared = 0;
    for (const [name, ref] of acts) {
      const ours = got.get(RENAME[name] ?? name);
      expect(ours, `activation ${name} was not captured`).toBeDefined();
      expect([...ours!.shape], name).toEqual(ours!.rank === 4 ? [ref.shape[0], ref.shape[2], ref.shape[3], ref.shape[1]] : ref.shape);
      expect(await nchwData(ours!)).toBeCloseWithin(ref.data as Float32Array, UNET, { shape: ref.shape, what: name });
      compared++;
    }
    expect(compared).toBe(164);
    tf.dispose([...got.values(), y, t]);
  });
});
