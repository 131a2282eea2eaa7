import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { installGradients } from '../../reference/grad/index.ts';
import { TrainConfig } from '../../reference/train/config.ts';
import { ImageEpochs } from '../../reference/train/data.ts';
import { train } from '../../reference/train/loop.ts';
import { createModel, type TrainableModel } from '../../reference/train/model.ts';
import { disposeOptimState, optimBufferByName } from '../../reference/train/optim.ts';
import { TINY_CONFIG } from '../../reference/unet/config.ts';
import { loadCheckpoint } from '../../reference/unet/checkpoint.ts';
import { disposeParams } from '../../reference/unet/params.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';

installGradients();

/** The tiny UNet (2 levels, attention at 4×4, 8×8 input) with every parameter random, so no gradient is trivially zero. */
function randomUnet(seed: number): TrainableModel {
  const m = createModel({ kind: 'unet', unet: { ...TINY_CONFIG, dropout: 0 } }, new Rng(seed));
  const rng = new Rng(seed + 1);
  for (const n of m.names) {
    const v = m.variables.get(n)!;
    const size = v.shape.reduce((a, b) => a * b, 1);
    const scale = n.endsWith('.bias') ? 0.1 : 1 / Math.sqrt(v.shape.length > 1 ? size / v.shape[v.shape.length - 1] : 1);
    tf.tidy(() => v.assign(tf.tensor(Float32Array.from(rng.normals(size), (z) => (n.includes('norm') && n.endsWith('.weight') ? 1 + 0.2 * z : scale * z)), v.shape)));
  }
  return m;
}

/** Inputs: a batch of 2 images at different timesteps, and a regression target. */
function inputs(): { x: tf.Tensor4D; t: tf.Tensor1D; target: tf.Tensor4D } {
  const rng = new Rng(3);
  return {
    x: tf.tensor4d(Float32Array.from(rng.normals(2 * 8 * 8)), [2, 8, 8, 1]),
    t: tf.tensor1d([3, 870], 'float32'),
    target: tf.tensor4d(Float32Array.from(rng.normals(2 * 8 * 8)), [2, 8, 8, 1]),
  };
}

const loss = (m: TrainableModel, x: tf.Tensor4D, t: tf.Tensor1D, target: tf.Tensor4D, params?: ReadonlyMap<string, tf.Tensor>): tf.Scalar =>
  tf.tidy(() => tf.mean(tf.square(tf.sub(m.apply(x, t, params ? { params } : {}), target))) as tf.Scalar);

async function gradients(m: TrainableModel): Promise<Map<string, Float32Array>> {
  const { x, t, target } = inputs();
  const vars = m.names.map((n) => m.variables.get(n)!);
  const { value, grads } = tf.variableGrads(() => loss(m, x, t, target), vars);
  const byVar = new Map(m.names.map((n) => [m.variables.get(n)!.name, n]));
  const out = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) out.set(byVar.get(k)!, (await g.data()) as Float32Array);
  tf.dispose([x, t, target, value, ...Object.values(grads)]);
  return out;
}

describe('7.8 Training the UNet', () => {
  it('the UNet\'s gradient along a random direction equals the central difference of its loss  [training.grad.unetDirectional]', async () => {
    const m = randomUnet(10);
    try {
      const g = await gradients(m);
      const { x, t, target } = inputs();
      const rng = new Rng(4);
      const dir = new Map(m.names.map((n) => [n, Float32Array.from(rng.normals(g.get(n)!.length))]));
      let analytic = 0;
      for (const n of m.names) {
        const gn = g.get(n)!;
        const dn = dir.get(n)!;
        for (let i = 0; i < gn.length; i++) analytic += gn[i] * dn[i];
      }
      const at = async (h: number): Promise<number> => {
        const shifted = new Map(m.names.map((n) => [n, tf.tidy(() => tf.add(m.variables.get(n)!, tf.mul(tf.tensor(dir.get(n)!, m.variables.get(n)!.shape), h)))]));
        const l = loss(m, x, t, target, shifted);
        const v = (await l.data())[0];
        tf.dispose([l, ...shifted.values()]);
        return v;
      };
      const h = 1e-3;
      const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
      tf.dispose([x, t, target]);
      // float32 losses of size ~1 differ by ~1e-3·|∇L·v| between ±h; their rounding (~1e-7) over 2h gives ~1e-4
      // absolute, and the O(h²) truncation is of the same order for this smooth network.
      expect(numeric).toBeCloseWithin(analytic, override({ rtol: 2e-2, atol: 2e-3 }, 'float32 central difference with h = 1e-3 of a loss of size ~1'));
      expect(Math.abs(analytic)).toBeGreaterThan(0.1);
    } finally {
      m.dispose();
    }
  });

  it('every UNet parameter gradient agrees with the cpu backend\'s  [training.grad.unetAgreesWithCpu]', async () => {
    const m = randomUnet(20);
    const values = new Map<string, Float32Array>();
    let here: Map<string, Float32Array>;
    try {
      here = await gradients(m);
      for (const n of m.names) values.set(n, (await m.variables.get(n)!.data()) as Float32Array);
    } finally {
      m.dispose();
    }
    // Rebuild the same model on the cpu backend from plain arrays: tensors are not moved between backends
    // (webgpu under Node has no synchronous read-back to move them with).
    const before = tf.getBackend();
    if (!(await tf.setBackend('cpu'))) throw new Error('cannot set the cpu backend');
    let there: Map<string, Float32Array>;
    try {
      const c = randomUnet(20);
      try {
        for (const n of c.names) tf.tidy(() => c.variables.get(n)!.assign(tf.tensor(values.get(n)!, c.variables.get(n)!.shape)));
        there = await gradients(c);
      } finally {
        c.dispose();
      }
    } finally {
      if (!(await tf.setBackend(before))) throw new Error(`cannot return to ${before}`);
    }
    const tol = override({ rtol: 1e-3, atol: 1e-4 }, 'a whole UNet\'s backward pass in float32 with different summation orders on two backends');
    for (const [n, g] of here) expect(g).toBeCloseWithin(there.get(n)!, tol, { what: n });
  });

  it('a UNet run writes a checkpoint that the UNet\'s own loader reads, with the trained EMA weights  [training.checkpoint.unetCompatible]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-unet-'));
    try {
      const config = TrainConfig.parse({
        model: { kind: 'unet', unet: TINY_CONFIG },
        diffusion: { num_diffusion_timesteps: 20, beta_start: 1e-3, beta_end: 0.2 },
        optim: { lr: 1e-3, warmup: 0, ema_decay: 0.5 },
        batch_size: 2,
        checkpoint_every: 2,
      });
      const rng = new Rng(8);
      const levels = Uint8Array.from({ length: 4 * 64 }, () => rng.int(256));
      const run = await train({ config, dataName: 'synthetic', openData: (r) => new ImageEpochs('synthetic', levels, 4, [8, 8, 1], r), outDir: dir, steps: 2, keepModel: true });
      try {
        const loaded = loadCheckpoint(join(dir, 'checkpoint'), { ema: true });
        expect(loaded.checkpoint.unet).toEqual(TINY_CONFIG);
        expect(loaded.checkpoint.diffusion.model_var_type).toBe('fixedlarge');
        const ema = await optimBufferByName(run.optim!, 'ema');
        for (const n of ['conv_in.weight', 'down.0.block.0.conv2.weight', 'mid.attn_1.proj_out.weight', 'conv_out.bias']) {
          expect(await loaded.params[n].data(), n).toEqual(ema.get(n)!.data);
        }
        // conv_out starts at zero; two updates moved it, so the checkpoint holds trained weights
        expect(Math.max(...Array.from(await loaded.params['conv_out.weight'].data(), Math.abs))).toBeGreaterThan(0);
        disposeParams(loaded.params);
      } finally {
        run.model!.dispose();
        disposeOptimState(run.optim!);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
