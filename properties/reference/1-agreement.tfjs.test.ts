import { describe, it } from 'vitest';
import fc from 'fast-check';
import type { ModelMeanType, ModelSpec, ModelVarType, Tensor } from '../../src/conformance/ops.ts';
import { createSpecOps } from '../../src/conformance/impl/spec.ts';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { AGREE, AGREE64, diffusionCaseArb, expectAgree, normals, perExample, size, tensor } from './agree.ts';

const spec = createSpecOps();
const ref = referenceOps();
/** Each property calls tfjs a few times per run; 25 runs keep a file within seconds on the software webgpu backend. */
const RUNS = { numRuns: 25 };

const abs = (t: Tensor): Float64Array => t.data.map(Math.abs);
const add = (...xs: ArrayLike<number>[]): Float64Array => Float64Array.from(xs[0], (_, i) => xs.reduce((s, x) => s + x[i], 0));
const mul = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (v, i) => v * b[i]);

async function buffersOf(betas: Tensor): Promise<Record<string, Float64Array>> {
  return Object.fromEntries(Object.entries(await spec.buffers!({ betas })).map(([k, v]) => [k, v.data]));
}

describe('4.1 Reference vs spec: schedules and buffers', () => {
  it("every named schedule (Ho's six, improved's linear and cosine) agrees with the spec's for random T and endpoints  [reference.schedule.agreesWithSpec]", () =>
    fc.assert(
      fc.asyncProperty(
        // T ∈ [20, 1000]: improved's linear needs T ≥ 20 (β_T = 20/T ≤ 1); endpoints around the published 1e−4 … 0.02.
        fc.integer({ min: 20, max: 1000 }),
        fc.constantFrom('quad', 'linear', 'warmup10', 'warmup50', 'const', 'jsd'),
        fc.double({ min: 1e-5, max: 1e-3, noNaN: true }),
        fc.double({ min: 1e-3, max: 0.05, noNaN: true }),
        fc.constantFrom<'linear' | 'cosine'>('linear', 'cosine'),
        fc.double({ min: 0.5, max: 1, noNaN: true }),
        async (T, hoName, start, end, impName, maxBeta) => {
          const ho = { family: 'ho' as const, name: hoName, T, beta_start: start, beta_end: end };
          expectAgree(`schedule ${JSON.stringify(ho)}`, (await ref.schedule!(ho)).betas, (await spec.schedule!(ho)).betas, 0, AGREE64);
          const imp = { family: 'improved' as const, name: impName, T, ...(impName === 'cosine' ? { max_beta: maxBeta } : {}) };
          expectAgree(`schedule ${JSON.stringify(imp)}`, (await ref.schedule!(imp)).betas, (await spec.schedule!(imp)).betas, 0, AGREE64);
        },
      ),
      RUNS,
    ));

  it('every buffer agrees with the spec for random betas in (0, 1], the t = 0 clipped log-variance included  [reference.buffers.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(
        // β ∈ [1e−5, 1]: the whole admissible range, with β = 1 (ᾱ reaches 0: ±∞ buffers must agree too) at the end.
        fc.array(fc.double({ min: 1e-5, max: 0.999, noNaN: true }), { minLength: 2, maxLength: 300 }),
        fc.boolean(),
        async (b, endsAtOne) => {
          const betas = tensor([b.length], endsAtOne ? [...b.slice(0, -1), 1] : b);
          const r = await ref.buffers!({ betas });
          const s = await spec.buffers!({ betas });
          for (const k of Object.keys(s) as Array<keyof typeof s>) expectAgree(`buffers.${k}`, r[k], s[k], 0, AGREE64);
        },
      ),
      RUNS,
    ));
});

describe('4.2 Reference vs spec: the forward process, its posterior and the parameterisations', () => {
  it('q_sample and q(x_t | x_0) agree with the spec at every timestep, per example  [reference.forward.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, async (c) => {
        const x0 = normals(c.seed, c.shape);
        const eps = normals(c.seed + 1, c.shape);
        const t = tensor([c.t.length], c.t);
        const a = { betas: c.betas };
        const b = await buffersOf(c.betas);
        const sa = perExample(b.sqrt_alphas_cumprod, c.t, c.shape);
        const sb = perExample(b.sqrt_one_minus_alphas_cumprod, c.t, c.shape);
        const what = `${c.name} t=[${c.t}]`;
        expectAgree(`q_sample ${what}`, (await ref.q_sample!(a, x0, t, eps)).x_t, (await spec.q_sample!(a, x0, t, eps)).x_t, add(mul(sa, abs(x0)), mul(sb, abs(eps))));
        const r = await ref.q_mean_variance!(a, x0, t);
        const s = await spec.q_mean_variance!(a, x0, t);
        expectAgree(`q_mean_variance.mean ${what}`, r.mean, s.mean, 0);
        expectAgree(`q_mean_variance.variance ${what}`, r.variance, s.variance, 0);
        expectAgree(`q_mean_variance.log_variance ${what}`, r.log_variance, s.log_variance, 0);
      }),
      RUNS,
    ));

  it('the posterior q(x_{t−1} | x_t, x_0) agrees with the spec, the clipped log-variance at t = 0 included  [reference.posterior.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, async (c) => {
        const x0 = normals(c.seed, c.shape);
        const xt = normals(c.seed + 1, c.shape, 2);
        const t = tensor([c.t.length], c.t);
        const b = await buffersOf(c.betas);
        const r = await ref.q_posterior_mean_variance!({ betas: c.betas }, x0, xt, t);
        const s = await spec.q_posterior_mean_variance!({ betas: c.betas }, x0, xt, t);
        const what = `${c.name} t=[${c.t}]`;
        const terms = add(mul(perExample(b.posterior_mean_coef1, c.t, c.shape), abs(x0)), mul(perExample(b.posterior_mean_coef2, c.t, c.shape), abs(xt)));
        expectAgree(`posterior mean ${what}`, r.mean, s.mean, terms);
        expectAgree(`posterior variance ${what}`, r.variance, s.variance, 0);
        expectAgree(`posterior log_variance_clipped ${what}`, r.log_variance_clipped, s.log_variance_clipped, 0);
      }),
      RUNS,
    ));

  it('x̂₀ from ε, x̂₀ from x_{t−1} and ε from x̂₀ agree with the spec within float32 error on the size of their terms  [reference.parameterisation.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, async (c) => {
        const xt = normals(c.seed, c.shape, 2);
        const y = normals(c.seed + 1, c.shape);
        const t = tensor([c.t.length], c.t);
        const a = { betas: c.betas };
        const b = await buffersOf(c.betas);
        const ra = perExample(b.sqrt_recip_alphas_cumprod, c.t, c.shape);
        const rm1 = perExample(b.sqrt_recipm1_alphas_cumprod, c.t, c.shape);
        const c1 = perExample(b.posterior_mean_coef1, c.t, c.shape);
        const c2 = perExample(b.posterior_mean_coef2, c.t, c.shape);
        const what = `${c.name} t=[${c.t}]`;
        expectAgree(
          `x̂₀ from ε ${what}`,
          (await ref.predict_xstart_from_eps!(a, xt, t, y)).pred_xstart,
          (await spec.predict_xstart_from_eps!(a, xt, t, y)).pred_xstart,
          add(mul(ra, abs(xt)), mul(rm1, abs(y))),
        );
        expectAgree(
          `x̂₀ from x_{t−1} ${what}`,
          (await ref.predict_xstart_from_xprev!(a, xt, t, y)).pred_xstart,
          (await spec.predict_xstart_from_xprev!(a, xt, t, y)).pred_xstart,
          add(Float64Array.from(y.data, (v, i) => Math.abs(v / c1[i])), Float64Array.from(xt.data, (v, i) => Math.abs((c2[i] / c1[i]) * v))),
        );
        expectAgree(
          `ε from x̂₀ ${what}`,
          (await ref.predict_eps_from_xstart!(a, xt, t, y)).eps,
          (await spec.predict_eps_from_xstart!(a, xt, t, y)).eps,
          Float64Array.from(xt.data, (v, i) => (Math.abs(ra[i] * v) + Math.abs(y.data[i])) / rm1[i]),
        );
      }),
      RUNS,
    ));
});

const MEANS: ModelMeanType[] = ['EPSILON', 'START_X', 'PREVIOUS_X'];
const VARS: ModelVarType[] = ['FIXED_SMALL', 'FIXED_LARGE', 'LEARNED', 'LEARNED_RANGE'];

/**
 * Scale of the terms of p_mean_variance's outputs, per element: x̂₀ is a·x − b·out (ε), out (x₀) or
 * x_{t−1}/c₁ − (c₂/c₁)·x_t; the mean is c₁·x̂₀ + c₂·x_t (or out); learned-range log σ² is f·log β + (1−f)·log β̃.
 */
function pmvScales(b: Record<string, Float64Array>, mean: ModelMeanType, t: number[], shape: number[], x: Tensor, out: Tensor, v: Tensor | null) {
  const ra = perExample(b.sqrt_recip_alphas_cumprod, t, shape);
  const rm1 = perExample(b.sqrt_recipm1_alphas_cumprod, t, shape);
  const c1 = perExample(b.posterior_mean_coef1, t, shape);
  const c2 = perExample(b.posterior_mean_coef2, t, shape);
  const n = size(shape);
  const x0 = Float64Array.from({ length: n }, (_, i) =>
    mean === 'EPSILON'
      ? Math.abs(ra[i] * x.data[i]) + Math.abs(rm1[i] * out.data[i])
      : mean === 'START_X'
        ? Math.abs(out.data[i])
        : Math.abs(out.data[i] / c1[i]) + Math.abs((c2[i] / c1[i]) * x.data[i]),
  );
  const m = Float64Array.from({ length: n }, (_, i) => (mean === 'PREVIOUS_X' ? Math.abs(out.data[i]) : c1[i] * x0[i] + Math.abs(c2[i] * x.data[i])));
  const lb = perExample(b.betas.map(Math.log), t, shape);
  const lp = perExample(b.posterior_log_variance_clipped, t, shape);
  const lv = Float64Array.from({ length: n }, (_, i) => {
    if (v === null) return 0;
    const f = (v.data[i] + 1) / 2;
    return Math.abs(f * lb[i]) + Math.abs((1 - f) * lp[i]) + Math.abs(v.data[i]);
  });
  return { x0, m, lv };
}

/** Split [B, 2C, H, W] into its mean part and its variance part. */
function splitChannels(out: Tensor): [Tensor, Tensor] {
  const [B, C2, ...rest] = out.shape;
  const inner = size(rest) * (C2 / 2);
  const a = new Float64Array(B * inner);
  const v = new Float64Array(B * inner);
  for (let b = 0; b < B; b++) {
    a.set(out.data.subarray(b * 2 * inner, b * 2 * inner + inner), b * inner);
    v.set(out.data.subarray(b * 2 * inner + inner, (b + 1) * 2 * inner), b * inner);
  }
  return [tensor([B, C2 / 2, ...rest], a), tensor([B, C2 / 2, ...rest], v)];
}

describe('4.3 Reference vs spec: the reverse process p(x_{t−1} | x_t)', () => {
  it('p_mean_variance agrees with the spec for every mean type × variance type × clipping, at every timestep  [reference.reverse.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, fc.constantFrom(...MEANS), fc.constantFrom(...VARS), fc.boolean(), async (c, mean, vart, clip) => {
        const learned = vart === 'LEARNED' || vart === 'LEARNED_RANGE';
        const [B, C, H, W] = c.shape;
        const x = normals(c.seed, c.shape, 2);
        // Model outputs ~ N(0, 1.5²): x₀ predictions partly outside [−1, 1] (clipping matters), v partly outside [−1, 1].
        const out = normals(c.seed + 1, [B, learned ? 2 * C : C, H, W], 1.5);
        const t = tensor([B], c.t);
        const a = { betas: c.betas, model_mean_type: mean, model_var_type: vart, clip_denoised: clip };
        const model: ModelSpec = { kind: 'output', output: out };
        const r = await ref.p_mean_variance!(a, model, x, t);
        const s = await spec.p_mean_variance!(a, model, x, t);
        const [mo, v] = learned ? splitChannels(out) : [out, null];
        const sc = pmvScales(await buffersOf(c.betas), mean, c.t, c.shape, x, mo, vart === 'LEARNED_RANGE' ? v : null);
        const what = `${c.name} ${vart}/${mean}${clip ? ' clip' : ''} t=[${c.t}]`;
        expectAgree(`pred_xstart ${what}`, r.pred_xstart, s.pred_xstart, sc.x0);
        expectAgree(`mean ${what}`, r.mean, s.mean, sc.m);
        expectAgree(`log_variance ${what}`, r.log_variance, s.log_variance, sc.lv);
        // σ² = e^{log σ²}: its relative error is the absolute error of log σ².
        expectAgree(`variance ${what}`, r.variance, s.variance, Float64Array.from(s.variance.data, (e, i) => e * (1 + sc.lv[i])));
      }),
      RUNS,
    ));
});

describe('4.4 Reference vs spec: KL divergence', () => {
  it('normal_kl agrees with the spec’s KL of diagonal Gaussians on the size of its terms  [reference.kl.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 64 }),
        fc.integer(),
        // log-variances in [−12, 6]: from below the smallest posterior variance of the golden schedules (β̃₁ ≈ 1e−5) to e⁶.
        fc.double({ min: -12, max: 6, noNaN: true }),
        async (n, seed, lvScale) => {
          const m1 = normals(seed, [n]);
          const m2 = normals(seed + 1, [n]);
          const l1 = normals(seed + 2, [n], lvScale / 3);
          const l2 = normals(seed + 3, [n], lvScale / 3);
          const r = await ref.normal_kl!(m1, l1, m2, l2);
          const s = await spec.normal_kl!(m1, l1, m2, l2);
          const terms = Float64Array.from({ length: n }, (_, i) => {
            const d = m1.data[i] - m2.data[i];
            return 0.5 * (1 + Math.abs(l1.data[i]) + Math.abs(l2.data[i]) + Math.exp(l1.data[i] - l2.data[i]) + d * d * Math.exp(-l2.data[i]));
          });
          expectAgree('normal_kl', r.kl, s.kl, terms);
        },
      ),
      RUNS,
    ));
});
