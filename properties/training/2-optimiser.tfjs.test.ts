import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { OptimConfig, TrainConfig } from '../../reference/train/config.ts';
import { disposeOptimState, globalNorm, initOptimState, learningRate, optimStep, ownedVariable } from '../../reference/train/optim.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';

/**
 * The recipe written out in float64, independently of the tfjs code: clip by the global norm, Adam with
 * PyTorch's bias correction, linear warm-up on the 1-based update count, EMA after the update.
 */
function recurrence64(cfg: OptimConfig, theta0: number[][], grads: number[][][]): { theta: number[][]; ema: number[][]; norms: number[] } {
  const theta = theta0.map((p) => [...p]);
  const ema = theta0.map((p) => [...p]);
  const m = theta0.map((p) => p.map(() => 0));
  const v = theta0.map((p) => p.map(() => 0));
  const norms: number[] = [];
  grads.forEach((g, step) => {
    const k = step + 1;
    const norm = Math.sqrt(g.reduce((s, gi) => s + gi.reduce((a, x) => a + x * x, 0), 0));
    norms.push(norm);
    const scale = cfg.grad_clip === null ? 1 : cfg.grad_clip / Math.max(norm, cfg.grad_clip);
    const lr = cfg.lr * (cfg.warmup > 0 ? Math.min(1, k / cfg.warmup) : 1);
    for (let i = 0; i < theta.length; i++)
      for (let j = 0; j < theta[i].length; j++) {
        const gij = g[i][j] * scale;
        m[i][j] = cfg.beta1 * m[i][j] + (1 - cfg.beta1) * gij;
        v[i][j] = cfg.beta2 * v[i][j] + (1 - cfg.beta2) * gij * gij;
        const mh = m[i][j] / (1 - cfg.beta1 ** k);
        const vh = v[i][j] / (1 - cfg.beta2 ** k);
        theta[i][j] -= (lr * mh) / (Math.sqrt(vh) + cfg.eps);
        ema[i][j] = cfg.ema_decay * ema[i][j] + (1 - cfg.ema_decay) * theta[i][j];
      }
  });
  return { theta, ema, norms };
}

const f32 = (xs: ArrayLike<number>): number[] => Array.from(xs, (x) => Math.fround(x));

describe('7.2 The optimiser: clipping, Adam with warm-up, EMA', () => {
  it('the defaults are the paper\'s recipe: Adam lr 2e-4, 5000 warm-up steps, clip 1, EMA 0.9999, batch 128, linear β 1e-4→0.02 over T = 1000, L_simple  [training.optim.paperDefaults]', () => {
    const c = TrainConfig.parse({ model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 1, temb_dim: 4 } } });
    expect(c.optim).toEqual({ lr: 2e-4, warmup: 5000, grad_clip: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, ema_decay: 0.9999 });
    expect(c.batch_size).toBe(128);
    expect(c.diffusion).toEqual({ beta_schedule: 'linear', beta_start: 1e-4, beta_end: 0.02, num_diffusion_timesteps: 1000, loss: 'simple', model_var_type: 'fixedlarge' });
  });

  it('the learning rate rises linearly over the warm-up and then stays at its peak  [training.optim.warmupLinear]', () => {
    const cfg = OptimConfig.parse({ lr: 2e-4, warmup: 5000 });
    expect(learningRate(cfg, 1)).toBeCloseTo(2e-4 / 5000, 20);
    expect(learningRate(cfg, 2500)).toBeCloseTo(1e-4, 18);
    expect(learningRate(cfg, 5000)).toBe(2e-4);
    expect(learningRate(cfg, 10_000)).toBe(2e-4);
    expect(learningRate(OptimConfig.parse({ lr: 1e-3, warmup: 0 }), 1)).toBe(1e-3);
  });

  it('several updates equal the float64 recurrence of clipping, Adam, warm-up and EMA  [training.optim.eqFloat64Recurrence]', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          // gradients scaled so that their global norm falls on both sides of the clipping threshold
          gradScale: fc.constantFrom(0.05, 0.5, 3),
          clip: fc.constantFrom(1, null),
          warmup: fc.integer({ min: 0, max: 4 }),
          emaDecay: fc.constantFrom(0.5, 0.9, 0.9999), // 0.5 makes an EMA mistake large
        }),
        async (c) => {
          const rng = new Rng(c.seed);
          const cfg = OptimConfig.parse({ lr: 0.01, warmup: c.warmup, grad_clip: c.clip, ema_decay: c.emaDecay });
          const shapes = [[3, 2], [4]];
          const names = ['a', 'b'];
          const theta0 = shapes.map((s) => f32(rng.normals(s.reduce((x, y) => x * y, 1))));
          const steps = 4;
          const grads = Array.from({ length: steps }, () => shapes.map((s) => f32(Array.from(rng.normals(s.reduce((x, y) => x * y, 1)), (g) => g * c.gradScale))));
          const params = new Map(names.map((n, i) => [n, ownedVariable(tf.tensor(theta0[i], shapes[i]), true)]));
          const state = initOptimState(names, params);
          const norms: number[] = [];
          for (const g of grads) {
            const gm = new Map(names.map((n, i) => [n, tf.tensor(g[i], shapes[i])]));
            const norm = globalNorm([...gm.values()]);
            norms.push((await norm.data())[0]);
            optimStep(cfg, names, params, gm, norm, state);
            tf.dispose([norm, ...gm.values()]);
          }
          const want = recurrence64(cfg, theta0, grads);
          // float32 Adam: m/√v̂ is O(1) per step, each step's update is lr·O(1) with float32 rounding relative to
          // the operands; after 4 steps the parameters carry ~10 roundings of O(1) numbers.
          const tol = override({ rtol: 1e-5, atol: 1e-6 }, 'four float32 Adam updates of O(1) numbers vs float64');
          expect(norms).toBeCloseWithin(want.norms, override({ rtol: 1e-6, atol: 1e-7 }, 'float32 sum of squares of 10 numbers'));
          for (let i = 0; i < names.length; i++) {
            expect(await params.get(names[i])!.data()).toBeCloseWithin(want.theta[i], tol, { what: `θ ${names[i]} ${JSON.stringify(c)}` });
            expect(await state.ema.get(names[i])!.data()).toBeCloseWithin(want.ema[i], tol, { what: `EMA ${names[i]} ${JSON.stringify(c)}` });
          }
          expect(state.updates).toBe(steps);
          disposeOptimState(state);
          for (const p of params.values()) p.dispose();
        },
      ),
      { numRuns: 30 },
    );
  });

  it('the global gradient norm of many tensors equals its float64 value (a UNet has hundreds)  [training.optim.globalNormManyTensors]', async () => {
    // 37 tensors: more inputs than one webgpu shader may bind (tfjs's addN fails there and silently yields 0)
    const rng = new Rng(9);
    const parts = Array.from({ length: 37 }, (_, i) => f32(rng.normals(1 + (i % 5))));
    const want = Math.sqrt(parts.reduce((s, p) => s + p.reduce((a, x) => a + x * x, 0), 0));
    const ts = parts.map((p) => tf.tensor1d(p));
    const norm = globalNorm(ts);
    expect((await norm.data())[0]).toBeCloseWithin(want, override({ rtol: 1e-6, atol: 1e-7 }, 'float32 sum of squares of ~110 numbers'));
    tf.dispose([norm, ...ts]);
  });

  it('clipping rescales the gradient to norm min(‖g‖, c) before Adam sees it  [training.optim.clipNorm]', async () => {
    // Adam's first step is nearly sign(ĝ)·lr whatever ĝ's size, so clipping shows in the first moment:
    // after one update m = (1 − β₁)·ĝ, hence ‖m‖ = (1 − β₁)·min(‖g‖, c).
    const cfg = OptimConfig.parse({ lr: 0.01, warmup: 0, grad_clip: 1 });
    for (const scale of [0.3, 1, 40]) {
      const params = new Map([['w', ownedVariable(tf.zeros([5]), true)]]);
      const state = initOptimState(['w'], params);
      const g = new Map([['w', tf.tidy(() => tf.mul(tf.tensor1d([1, -2, 3, -4, 5]), scale / Math.sqrt(55)))]]);
      const norm = globalNorm([g.get('w')!]);
      optimStep(cfg, ['w'], params, g, norm, state);
      const mNorm = globalNorm([state.m.get('w')!]);
      expect((await mNorm.data())[0]).toBeCloseWithin((1 - cfg.beta1) * Math.min(scale, 1), override({ rtol: 1e-6, atol: 1e-7 }, 'float32 norm of 5 numbers'));
      tf.dispose([norm, mNorm, ...g.values()]);
      disposeOptimState(state);
      params.get('w')!.dispose();
    }
  });
});
