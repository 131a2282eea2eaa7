import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { OptimConfig, TrainConfig } from '../../reference/train/config.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrainCheckpoint, restoreTensors, saveTrainCheckpoint } from '../../reference/train/checkpoint.ts';
import { createModel } from '../../reference/train/model.ts';
import {
  disposeOptimState,
  FLAT_ADAM_KERNEL,
  globalNorm,
  initOptimState,
  learningRate,
  optimBufferByName,
  optimStep,
  optimStepFlat,
  ownedVariable,
  readFlat,
  type OptimImpl,
  type OptimState,
} from '../../reference/train/optim.ts';
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
const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The update implementations the current backend runs: the fused kernel (wasm, cpu) and the tfjs-op version (all). */
const IMPLS: OptimImpl[] = tf.getKernel(FLAT_ADAM_KERNEL, tf.getBackend()) !== undefined ? ['fused', 'ops'] : ['ops'];

/** Per-name values of one of the state's flat buffers, as number arrays in name order. */
async function bufferOf(state: OptimState, which: 'm' | 'v' | 'ema'): Promise<Float32Array[]> {
  const by = await optimBufferByName(state, which);
  return state.layout.names.map((n) => by.get(n)!.data);
}

/**
 * A small problem: 1–5 parameter tensors of random shapes (so that flat offsets matter), initial values and
 * `steps` gradients, float32-representable, gradients scaled so that the global norm falls on both sides of the
 * clipping threshold.
 */
const problem = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  shapes: fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), { minLength: 1, maxLength: 5 }),
  gradScale: fc.constantFrom(0.05, 0.5, 3), // ‖g‖ of ~10 N(0,1) numbers is ~3: below, near and above c = 1
  clip: fc.constantFrom(1, null),
  warmup: fc.integer({ min: 0, max: 6 }), // 0 = no warm-up; 1–6: the last of 3–4 updates inside (W > steps) or past it
  emaDecay: fc.constantFrom(0.5, 0.9, 0.9999), // 0.5 makes an EMA mistake large
});
type Problem = typeof problem extends fc.Arbitrary<infer T> ? T : never;

function draw(c: Problem, steps: number): { names: string[]; theta0: number[][]; grads: number[][][] } {
  const rng = new Rng(c.seed);
  const names = c.shapes.map((_, i) => `p${i}`);
  const theta0 = c.shapes.map((s) => f32(rng.normals(sizeOf(s))));
  const grads = Array.from({ length: steps }, () => c.shapes.map((s) => f32(Array.from(rng.normals(sizeOf(s)), (g) => g * c.gradScale))));
  return { names, theta0, grads };
}

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

  for (const impl of IMPLS) {
    it(`several updates (${impl}, per-tensor and flat gradients) equal the float64 recurrence of clipping, Adam, warm-up and EMA  [training.optim.eqFloat64Recurrence]`, async () => {
      // The generator must reach both sides of the clipping threshold and both warm-up regimes.
      const seen = { clipped: 0, unclipped: 0, inWarmup: 0, pastWarmup: 0, multiTensor: 0 };
      await fc.assert(
        fc.asyncProperty(problem, fc.boolean(), async (c, flat) => {
          const steps = 4;
          const { names, theta0, grads } = draw(c, steps);
          const cfg = OptimConfig.parse({ lr: 0.01, warmup: c.warmup, grad_clip: c.clip, ema_decay: c.emaDecay });
          const params = new Map(names.map((n, i) => [n, ownedVariable(tf.tensor(theta0[i], c.shapes[i]), true)]));
          const state = initOptimState(names, params);
          const flatParams = await readFlat(state.layout, params);
          const norms: number[] = [];
          for (const g of grads) {
            if (flat) {
              const gf = Float32Array.from(g.flat());
              const norm = Math.fround(Math.sqrt(gf.reduce((s, x) => s + x * x, 0)));
              norms.push(norm);
              await optimStepFlat(cfg, params, flatParams, gf, norm, state, impl);
            } else {
              const gm = new Map(names.map((n, i) => [n, tf.tensor(g[i], c.shapes[i])]));
              const norm = globalNorm([...gm.values()], impl);
              norms.push((await norm.data())[0]);
              optimStep(cfg, params, gm, norms[norms.length - 1], state, impl);
              tf.dispose([norm, ...gm.values()]);
            }
          }
          const want = recurrence64(cfg, theta0, grads);
          for (const n of want.norms) seen[c.clip !== null && n > c.clip ? 'clipped' : 'unclipped']++;
          seen[c.warmup > steps ? 'inWarmup' : 'pastWarmup']++;
          if (names.length > 1) seen.multiTensor++;
          // float32 Adam: m/√v̂ is O(1) per step, each step's update is lr·O(1) with float32 rounding relative to
          // the operands; after 4 steps the parameters carry ~10 roundings of O(1) numbers.
          const tol = override({ rtol: 1e-5, atol: 1e-6 }, 'four float32 Adam updates of O(1) numbers vs float64');
          const what = (x: string, i: number): string => `${x} ${names[i]} ${impl} ${flat ? 'flat' : 'per-tensor'} ${JSON.stringify(c)}`;
          expect(norms).toBeCloseWithin(want.norms, override({ rtol: 1e-6, atol: 1e-7 }, 'float32 sum of squares of ≤ 320 numbers'));
          const ema = await bufferOf(state, 'ema');
          for (let i = 0; i < names.length; i++) {
            expect(await params.get(names[i])!.data()).toBeCloseWithin(want.theta[i], tol, { what: what('θ', i) });
            expect(ema[i]).toBeCloseWithin(want.ema[i], tol, { what: what('EMA', i) });
            if (flat) expect(flatParams.subarray(state.layout.offsets[i], state.layout.offsets[i] + state.layout.sizes[i])).toEqual(await params.get(names[i])!.data());
          }
          expect(state.updates).toBe(steps);
          disposeOptimState(state);
          for (const p of params.values()) p.dispose();
        }),
        { numRuns: 30 },
      );
      expect(Object.entries(seen).filter(([, n]) => n === 0).map(([k]) => k), 'regimes the generator never reached').toEqual([]);
    });
  }

  it('the tfjs-op update (webgpu\'s) equals the fused kernel to float32 rounding, and the flat-gradient update equals the per-tensor one bit for bit  [training.optim.opsAgreesWithFused]', async (ctx) => {
    if (!IMPLS.includes('fused')) ctx.skip(`the fused kernel exists on wasm and cpu only, not ${tf.getBackend()}`);
    await fc.assert(
      fc.asyncProperty(problem, async (c) => {
        const steps = 3;
        const { names, theta0, grads } = draw(c, steps);
        const cfg = OptimConfig.parse({ lr: 0.01, warmup: c.warmup, grad_clip: c.clip, ema_decay: c.emaDecay });
        const run = async (how: OptimImpl, flat: boolean): Promise<Float32Array[]> => {
          const params = new Map(names.map((n, i) => [n, ownedVariable(tf.tensor(theta0[i], c.shapes[i]), true)]));
          const state = initOptimState(names, params);
          const flatParams = await readFlat(state.layout, params);
          for (const g of grads) {
            const gf = Float32Array.from(g.flat());
            const norm = Math.fround(Math.sqrt(gf.reduce((s, x) => s + x * x, 0)));
            if (flat) await optimStepFlat(cfg, params, flatParams, gf, norm, state, how);
            else {
              const gm = new Map(names.map((n, i) => [n, tf.tensor(g[i], c.shapes[i])]));
              optimStep(cfg, params, gm, norm, state, how);
              tf.dispose([...gm.values()]);
            }
          }
          const out = [await readFlat(state.layout, params), ...(await Promise.all((['m', 'v', 'ema'] as const).map(async (w) => (await state[w].data()) as Float32Array)))];
          disposeOptimState(state);
          for (const p of params.values()) p.dispose();
          return out;
        };
        const fused = await run('fused', false);
        const ops = await run('ops', false);
        const labels = ['θ', 'm', 'v', 'EMA'];
        // ops rounds after each of ~10 operations per step, the kernel once per stored value: three steps apart
        const tol = override({ rtol: 1e-5, atol: 1e-7 }, 'three updates, rounded after every op vs once per stored value');
        fused.forEach((x, i) => expect(ops[i]).toBeCloseWithin(Array.from(x), tol, { what: `${labels[i]} ${JSON.stringify(c)}` }));
        for (const how of IMPLS) {
          const perTensor = how === 'fused' ? fused : ops;
          const flat = await run(how, true);
          flat.forEach((x, i) => expect(Array.from(x), `${labels[i]} ${how}`).toEqual(Array.from(perTensor[i])));
        }
      }),
      { numRuns: 20 },
    );
  });

  for (const impl of IMPLS) {
    it(`the global gradient norm (${impl}) of many tensors equals its float64 value (a UNet has hundreds)  [training.optim.globalNormManyTensors]`, async () => {
      // 37 tensors: more inputs than one webgpu shader may bind (tfjs's addN fails there and silently yields 0)
      const rng = new Rng(9);
      const parts = Array.from({ length: 37 }, (_, i) => f32(rng.normals(1 + (i % 5))));
      const want = Math.sqrt(parts.reduce((s, p) => s + p.reduce((a, x) => a + x * x, 0), 0));
      const ts = parts.map((p) => tf.tensor1d(p));
      const norm = globalNorm(ts, impl);
      expect((await norm.data())[0]).toBeCloseWithin(want, override({ rtol: 1e-6, atol: 1e-7 }, 'float32 sum of squares of ~110 numbers'));
      tf.dispose([norm, ...ts]);
    });
  }

  it('clipping rescales the gradient to norm min(‖g‖, c) before Adam sees it  [training.optim.clipNorm]', async () => {
    // Adam's first step is nearly sign(ĝ)·lr whatever ĝ's size, so clipping shows in the first moment:
    // after one update m = (1 − β₁)·ĝ, hence ‖m‖ = (1 − β₁)·min(‖g‖, c).
    const cfg = OptimConfig.parse({ lr: 0.01, warmup: 0, grad_clip: 1 });
    for (const impl of IMPLS) {
      for (const scale of [0.3, 1, 40]) {
        const params = new Map([['w', ownedVariable(tf.zeros([5]), true)]]);
        const state = initOptimState(['w'], params);
        const g = new Map([['w', tf.tidy(() => tf.mul(tf.tensor1d([1, -2, 3, -4, 5]), scale / Math.sqrt(55)))]]);
        const norm = globalNorm([g.get('w')!], impl);
        optimStep(cfg, params, g, (await norm.data())[0], state, impl);
        const mNorm = globalNorm([state.m], impl);
        expect((await mNorm.data())[0]).toBeCloseWithin((1 - cfg.beta1) * Math.min(scale, 1), override({ rtol: 1e-6, atol: 1e-7 }, 'float32 norm of 5 numbers'));
        tf.dispose([norm, mNorm, ...g.values()]);
        disposeOptimState(state);
        params.get('w')!.dispose();
      }
    }
  });

  it('an update leaves no tensor behind, per-tensor or flat  [training.optim.noTensorLeak]', async () => {
    const cfg = OptimConfig.parse({ lr: 0.01, warmup: 0 });
    for (const impl of IMPLS) {
      const params = new Map([['a', ownedVariable(tf.ones([2, 3]), true)], ['b', ownedVariable(tf.ones([4]), true)]]);
      const state = initOptimState(['a', 'b'], params);
      const flatParams = await readFlat(state.layout, params);
      const grads = new Map([['a', tf.ones([2, 3])], ['b', tf.ones([4])]]);
      const before = tf.memory().numTensors;
      for (let k = 0; k < 3; k++) {
        const norm = globalNorm([...grads.values()], impl);
        optimStep(cfg, params, grads, (await norm.data())[0], state, impl);
        norm.dispose();
        await optimStepFlat(cfg, params, flatParams, new Float32Array(10).fill(0.5), 1.58, state, impl);
      }
      expect(tf.memory().numTensors, impl).toBe(before);
      tf.dispose([...grads.values(), ...params.values()]);
      disposeOptimState(state);
    }
  });

  it('the flat state round-trips through a checkpoint\'s per-tensor entries (adam_m/…, adam_v/…, ema/…) bit for bit  [training.optim.checkpointRoundTrip]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-optim-'));
    const config = TrainConfig.parse({ model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 2, temb_dim: 4 } }, optim: { lr: 0.01, warmup: 0, ema_decay: 0.9 } });
    const model = createModel(config.model, new Rng(1));
    const state = initOptimState(model.names, model.variables);
    const copy = createModel(config.model, new Rng(2));
    const restored = initOptimState(copy.names, copy.variables);
    try {
      const rng = new Rng(3);
      for (let k = 0; k < 2; k++) {
        const grads = new Map(model.names.map((n) => [n, tf.tensor(f32(rng.normals(model.variables.get(n)!.size)), model.variables.get(n)!.shape)]));
        const norm = globalNorm([...grads.values()]);
        optimStep(config.optim, model.variables, grads, (await norm.data())[0], state);
        tf.dispose([norm, ...grads.values()]);
      }
      const rngState = new Rng(0).getState();
      const ck = await saveTrainCheckpoint(dir, {
        state: { step: 2, data: 'moons', config, rng: rngState, batches: { kind: 'stream', rng: rngState }, elapsed_s: 0, backend: tf.getBackend() },
        model,
        optim: state,
        keep: 1,
      });
      const loaded = readTrainCheckpoint(ck);
      // per-tensor entries in the file are the flat buffers' slices
      for (const [prefix, which] of [['adam_m', 'm'], ['adam_v', 'v'], ['ema', 'ema']] as const) {
        const by = await optimBufferByName(state, which);
        for (const n of model.names) expect(Array.from(loaded.tensors.get(`${prefix}/${n}`)!.data as Float32Array), `${prefix}/${n}`).toEqual(Array.from(by.get(n)!.data));
      }
      restoreTensors(loaded, copy, restored);
      expect(restored.updates).toBe(2);
      for (const which of ['m', 'v', 'ema'] as const) expect(await restored[which].data(), which).toEqual(await state[which].data());
      expect(await readFlat(restored.layout, copy.variables)).toEqual(await readFlat(state.layout, model.variables));
    } finally {
      model.dispose();
      copy.dispose();
      disposeOptimState(state);
      disposeOptimState(restored);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
