import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors, writeSafetensors, type StTensor } from '../../src/formats/safetensors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { TOL } from '../../src/numeric/tolerance.ts';
import { HO_CIFAR10_DIFFUSION, loadCheckpoint, readCheckpointConfig, saveCheckpoint } from '../../reference/unet/checkpoint.ts';
import { TINY_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { unetForward } from '../../reference/unet/model.ts';
import { disposeParams, initParams, paramSpecs, type UNetParams } from '../../reference/unet/params.ts';
import { paramsFromStateDict, readStateDict, WeightImportError } from '../../reference/unet/weights.ts';
import { WEIGHTS_FILE } from './golden.ts';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ddpm-unet-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cfg = UNetConfig.parse(TINY_CONFIG);

/** Random (not zero-initialised) parameters, so that every tensor influences the output. */
function randomParams(seed: number): UNetParams {
  const rng = new Rng(seed);
  const p: UNetParams = {};
  for (const s of paramSpecs(cfg)) p[s.name] = tf.tensor(Float32Array.from(rng.normals(s.shape.reduce((a, b) => a * b, 1)), (v) => 0.2 * v), s.shape);
  return p;
}

async function outputOf(params: UNetParams): Promise<Float32Array> {
  const rng = new Rng(5);
  const y = tf.tidy(() => unetForward(cfg, params, tf.tensor4d(Float32Array.from(rng.normals(2 * 8 * 8)), [2, 8, 8, 1]), tf.tensor1d([3, 870], 'int32')));
  const d = (await y.data()) as Float32Array;
  y.dispose();
  return d;
}

describe('6.6 The UNet: export, import and checkpoints', () => {
  it('exported weights load back to bit-identical parameters and identical outputs  [unet.weights.roundTrip]', async () => {
    const p = randomParams(1);
    const before = await outputOf(p);
    await saveCheckpoint(dir, { unet: cfg, diffusion: HO_CIFAR10_DIFFUSION, params: p, ema: p });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'ema.safetensors', 'model.safetensors']); // no temporary files left
    const { params: q, checkpoint } = loadCheckpoint(dir);
    expect(checkpoint.unet).toEqual(cfg);
    expect(checkpoint.parameters).toBe(paramSpecs(cfg).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
    for (const s of paramSpecs(cfg)) expect(await q[s.name].data(), s.name).toEqual(await p[s.name].data());
    expect(await outputOf(q)).toBeCloseWithin(before, TOL.exact);
    disposeParams(p);
    disposeParams(q);
  });

  it('writes the PyTorch layout: the exported file equals the port’s state dict it was imported from, byte for byte in every tensor  [unet.weights.exportIsPortLayout]', async () => {
    const { config, params } = readStateDict(WEIGHTS_FILE);
    await saveCheckpoint(dir, { unet: config, diffusion: HO_CIFAR10_DIFFUSION, params });
    disposeParams(params);
    const orig = readSafetensors(WEIGHTS_FILE);
    const ours = readSafetensors(join(dir, 'model.safetensors'));
    expect([...ours.tensors.keys()]).toEqual([...orig.tensors.keys()]);
    for (const [name, t] of orig.tensors) {
      const o = ours.tensors.get(name)!;
      expect(o.shape, name).toEqual(t.shape);
      expect(Buffer.from((o.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer)), name).toBe(true);
    }
    expect(JSON.parse(ours.metadata.config)).toEqual(config);
  });

  it('a state dict with problems loads nothing: no tensor is created, and the error lists every problem  [unet.weights.allOrNothing]', () => {
    const st = readSafetensors(WEIGHTS_FILE).tensors;
    const tensors = new Map<string, StTensor>(st);
    tensors.delete('conv_out.weight');
    tensors.set('up.0.block.2.conv1.weight', { ...st.get('up.0.block.2.conv1.weight')!, shape: [32, 64, 9, 1] });
    tensors.set('unexpected', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    const small = UNetConfig.parse(JSON.parse(readSafetensors(WEIGHTS_FILE).metadata.cfg));
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      paramsFromStateDict(small, tensors, 'broken.safetensors');
    } catch (e) {
      err = e;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(err).toBeInstanceOf(WeightImportError);
    const msg = (err as Error).message;
    expect(msg).toContain('broken.safetensors: the state dict does not fit the model (1 unknown, 1 missing, 1 mis-shaped); nothing was loaded');
    expect(msg).toContain('conv_out.weight: missing (expected shape [1,32,3,3])');
    expect(msg).toContain('up.0.block.2.conv1.weight: expected shape [32,64,3,3], got [32,64,9,1]');
    expect(msg).toContain('unexpected: not a parameter of this model (shape [1])');
  });

  it('refuses non-finite weights, naming the tensor and the element  [unet.weights.refusesNonFinite]', async () => {
    const p = randomParams(2);
    await saveCheckpoint(dir, { unet: cfg, diffusion: HO_CIFAR10_DIFFUSION, params: p });
    disposeParams(p);
    const st = readSafetensors(join(dir, 'model.safetensors'));
    (st.tensors.get('mid.attn_1.k.bias')!.data as Float32Array)[3] = Number.NaN;
    writeSafetensors(join(dir, 'model.safetensors'), [...st.tensors].map(([n, t]) => [n, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]), st.metadata);
    expect(() => loadCheckpoint(dir)).toThrow(/mid\.attn_1\.k\.bias: element 3 \(flat, PyTorch layout\) is NaN/);
  });

  it('a bad checkpoint directory is reported with the file and the field  [unet.checkpoint.clearErrors]', async () => {
    expect(() => readCheckpointConfig(join(dir, 'nope'))).toThrow(`${join(dir, 'nope')}: checkpoint directory does not exist`);
    expect(() => readCheckpointConfig(dir)).toThrow(`${join(dir, 'config.json')}: cannot read the checkpoint configuration`);
    const p = initParams(cfg, new Rng(3));
    await saveCheckpoint(dir, { unet: cfg, diffusion: HO_CIFAR10_DIFFUSION, params: p });
    disposeParams(p);
    const good = readCheckpointConfig(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...good, unet: { ...good.unet, ch: 40 } }));
    expect(() => readCheckpointConfig(dir)).toThrow(/config\.json: unet\.ch: GroupNorm down\.0\.block\.0\.norm1 would have 40 channels/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...good, diffusion: { ...good.diffusion, model_var_type: 'learned' } }));
    expect(() => readCheckpointConfig(dir)).toThrow(/config\.json: diffusion\.model_var_type/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...good, unet: { ...good.unet, ch_mult: [1, 1] } }));
    expect(() => loadCheckpoint(dir)).toThrow(/config\.json: parameters: says \d+, but the unet configuration has \d+ parameters/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...good, unet: { ...good.unet, ch_mult: [1, 1] }, parameters: undefined }));
    expect(() => loadCheckpoint(dir)).toThrow(/config\.json: parameters/);
    rmSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(good));
    expect(() => loadCheckpoint(dir)).toThrow(`${join(dir, 'model.safetensors')}: cannot read file`);
    expect(existsSync(join(dir, 'config.json'))).toBe(true);
  });
});
