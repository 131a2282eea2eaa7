/**
 * The laws of the diffusion model as reusable checks over any {@link DiffusionOps} implementation: the float64
 * spec (through `src/conformance/impl/spec.ts`), the tfjs reference, or another project's code behind the
 * `--impl` protocol (`ddpm-spec check`).
 *
 * Each law is a plain async function `run(impl, opts)` that draws its inputs from a seeded {@link Rng}, calls the
 * implementation's operations (0-based t, NCHW tensors, as the public reference code) and returns a
 * {@link LawResult}: the id, a verdict, the worst |Δ| with its bound, and a readable detail. No test framework is
 * involved; a vitest file calls a law inside an `it` whose title carries the law's id.
 *
 * **Tolerances** are relative to the size of the *terms* of each computation, not of its result: a comparison
 * passes when |actual − expected| ≤ atol + rtol·scale, where scale is the sum of the magnitudes of the terms
 * that produce the value (e.g. |√(1/ᾱ)·x_t| + |√(1/ᾱ−1)·ε| for x̂_0 from ε, which at ᾱ ≈ 2.4·10⁻⁹ is 20 000 times
 * the result). {@link LAW_TOL} has defaults for float64 and float32 implementations.
 *
 * Laws use the implementation's own buffers (`buffers`) where it has them, so that they check internal
 * consistency; without `buffers`, the textbook definitions from β are used.
 *
 * @module
 */
import type { BufferName, DiffusionArgs, DiffusionOps, ModelSpec, OpName, Tensor } from './ops.ts';
import { BUFFER_NAMES } from './ops.ts';
import { DEFAULT_PRECISION, type Precision } from './vocabulary.ts';
import { Rng } from '../numeric/rng.ts';
import { fmt, unravel } from '../numeric/close.ts';
import { override, type Tolerance } from '../numeric/tolerance.ts';
import { cosineBetas, improvedLinearBetas, quadBetas } from '../../spec/ddpm/schedule.ts';

/** The outcome of one law on one implementation. */
export interface LawResult {
  /** The law's id, `ddpm.ops.<law>`. */
  id: string;
  /** The claim in one sentence. */
  claim: string;
  verdict: 'pass' | 'fail' | 'skip' | 'error';
  /** False exactly when the verdict is `fail` or `error`. */
  ok: boolean;
  /** The largest |actual − expected| over all comparisons (null when nothing was compared). */
  maxAbs: number | null;
  /** The bound at the worst comparison (the one closest to, or furthest beyond, its bound). */
  bound: number | null;
  tolerance: Tolerance | null;
  /** Where and by how much the worst comparison missed (or passed), or why the law was skipped or errored. */
  detail: string;
  /** Number of scalar comparisons made. */
  comparisons: number;
}

/** Options of a law run. */
export interface LawOptions {
  /** The tolerance (applied as atol + rtol·scale); default {@link LAW_TOL}[precision]. */
  tol?: Tolerance;
  /** The arithmetic the implementation declares (default: its `precision`, else float32); chooses the default tolerance. */
  precision?: Precision;
  /** Seed of the inputs; default 0. */
  seed?: number;
}

/** A law: its id, its claim, the operations it needs, and its check. */
export interface Law {
  id: string;
  claim: string;
  needs: readonly OpName[];
  run(impl: DiffusionOps, opts?: LawOptions): Promise<LawResult>;
}

/** Default tolerances of the laws, per arithmetic of the implementation. */
export const LAW_TOL = {
  float64: override({ rtol: 1e-12, atol: 1e-14 }, 'float64: a few hundred ulps of the magnitude of the terms'),
  float32: override({ rtol: 2e-6, atol: 2e-6 }, 'float32: ~16 ulps of the magnitude of the terms (a·x − b·y with large a, b loses to cancellation)'),
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Inputs

const SHAPE = [3, 2, 4, 4]; // [B, C, H, W]: three examples with different timesteps

/** The schedules every law runs on: Ho's linear (improved's scaling, T = 1000), cosine T = 20 (√(1/ᾱ_T) = 406), quad T = 50. */
function schedules(): { name: string; betas: Tensor }[] {
  const t = (v: number[]): Tensor => ({ shape: [v.length], data: Float64Array.from(v) });
  return [
    { name: 'linear T=1000', betas: t(improvedLinearBetas(1000)) },
    { name: 'cosine T=20', betas: t(cosineBetas(20)) },
    { name: 'quad T=50', betas: t(quadBetas(50, 1e-4, 0.05)) },
  ];
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const tensor = (shape: readonly number[], data: Float64Array): Tensor => ({ shape: [...shape], data });
const normals = (rng: Rng, shape: readonly number[]): Tensor => tensor(shape, rng.normals(size(shape)));
const uniforms = (rng: Rng, shape: readonly number[], lo: number, hi: number): Tensor =>
  tensor(shape, rng.uniforms(size(shape)).map((u) => lo + (hi - lo) * u));

/** Timesteps [B] = [a middle one, 0, T−1] (0-based, not sorted). */
function timesteps(rng: Rng, T: number): Tensor {
  return tensor([3], Float64Array.from([1 + rng.int(Math.max(1, T - 2)), 0, T - 1]).map((v) => Math.min(v, T - 1)));
}

/** All entries of a [B] timestep tensor equal to t. */
const allAt = (t: number): Tensor => tensor([SHAPE[0]], new Float64Array(SHAPE[0]).fill(t));

/** The buffers from β by their definitions (the reference code's formulas, float64). */
export function referenceBuffers(betas: ArrayLike<number>): Record<BufferName, Float64Array> {
  const T = betas.length;
  const f = (g: (i: number) => number) => Float64Array.from({ length: T }, (_, i) => g(i));
  const ac = new Float64Array(T);
  let p = 1;
  for (let i = 0; i < T; i++) ac[i] = p *= 1 - betas[i];
  const prev = f((i) => (i === 0 ? 1 : ac[i - 1]));
  const pv = f((i) => (betas[i] * (1 - prev[i])) / (1 - ac[i]));
  return {
    betas: Float64Array.from(betas),
    alphas_cumprod: ac,
    alphas_cumprod_prev: prev,
    alphas_cumprod_next: f((i) => (i === T - 1 ? 0 : ac[i + 1])),
    sqrt_alphas_cumprod: f((i) => Math.sqrt(ac[i])),
    sqrt_one_minus_alphas_cumprod: f((i) => Math.sqrt(1 - ac[i])),
    log_one_minus_alphas_cumprod: f((i) => Math.log(1 - ac[i])),
    sqrt_recip_alphas_cumprod: f((i) => Math.sqrt(1 / ac[i])),
    sqrt_recipm1_alphas_cumprod: f((i) => Math.sqrt(1 / ac[i] - 1)),
    posterior_variance: pv,
    posterior_log_variance_clipped: f((i) => Math.log(i === 0 ? pv[1] : pv[i])),
    posterior_mean_coef1: f((i) => (betas[i] * Math.sqrt(prev[i])) / (1 - ac[i])),
    posterior_mean_coef2: f((i) => ((1 - prev[i]) * Math.sqrt(1 - betas[i])) / (1 - ac[i])),
  };
}

async function buffersOf(impl: DiffusionOps, betas: Tensor): Promise<Record<BufferName, Float64Array>> {
  if (!impl.buffers) return referenceBuffers(betas.data);
  const b = await impl.buffers({ betas });
  return Object.fromEntries(BUFFER_NAMES.map((k) => [k, b[k].data])) as Record<BufferName, Float64Array>;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparisons

/** Accumulates comparisons and remembers the worst one (largest |Δ|/bound). */
class Tally {
  n = 0;
  maxAbs = 0;
  private worstScore = -1;
  private worst = '';
  private worstAbs = 0;
  private worstBound = 0;
  failures = 0;
  constructor(private readonly tol: Tolerance) {}

  /** actual ≈ expected within atol + rtol·scale, element-wise; `scale` defaults to |expected|. */
  close(what: string, shape: readonly number[], actual: ArrayLike<number>, expected: ArrayLike<number>, scale?: ArrayLike<number> | number): void {
    if (actual.length !== expected.length) {
      this.fail(`${what}: ${actual.length} values, expected ${expected.length}`);
      return;
    }
    for (let i = 0; i < actual.length; i++) {
      const a = actual[i];
      const e = expected[i];
      const sc = scale === undefined ? Math.abs(e) : typeof scale === 'number' ? scale : scale[i];
      const bound = this.tol.atol + this.tol.rtol * sc;
      this.n++;
      const where = () => `${what} at [${unravel(i, shape).join(',')}]`;
      if (!Number.isFinite(a) || !Number.isFinite(e)) {
        if (Object.is(a, e)) continue;
        this.fail(`${where()}: got ${a}, expected ${e} (a non-finite value equals only itself)`);
        continue;
      }
      const d = Math.abs(a - e);
      if (d > this.maxAbs) this.maxAbs = d;
      const score = d / Math.max(bound, Number.MIN_VALUE);
      if (d > bound) this.failures++;
      if (score > this.worstScore) {
        this.worstScore = score;
        this.worstAbs = d;
        this.worstBound = bound;
        this.worst = `${where()}: |Δ| = ${fmt(d)} ${d > bound ? '>' : '≤'} bound ${fmt(bound)} (atol + rtol·scale, scale ${fmt(sc)}); actual ${fmt(a)}, expected ${fmt(e)}`;
      }
    }
  }

  /** a ≤ b within atol + rtol·|b| (or strictly when `strict`). */
  le(what: string, a: number, b: number, strict = false): void {
    this.n++;
    const bound = strict ? 0 : this.tol.atol + this.tol.rtol * Math.abs(b);
    const over = a - b;
    const bad = strict ? !(a < b) : !(over <= bound);
    if (bad) this.fail(`${what}: ${fmt(a)} ${strict ? '<' : '≤'} ${fmt(b)} fails${strict ? '' : ` (by ${fmt(over)} > ${fmt(bound)})`}`);
  }

  /** v ≥ 0 within atol + rtol·scale. */
  nonneg(what: string, v: number, scale: number): void {
    this.n++;
    const bound = this.tol.atol + this.tol.rtol * scale;
    if (!(v >= -bound)) this.fail(`${what}: ${fmt(v)} < 0 by more than the bound ${fmt(bound)} (atol + rtol·scale, scale ${fmt(scale)})`);
  }

  fail(message: string): void {
    this.failures++;
    if (this.worstScore < Infinity) {
      this.worstScore = Infinity;
      this.worst = message;
      this.worstAbs = Number.NaN;
      this.worstBound = Number.NaN;
    }
  }

  result(law: { id: string; claim: string }): LawResult {
    const ok = this.failures === 0;
    return {
      id: law.id,
      claim: law.claim,
      verdict: ok ? 'pass' : 'fail',
      ok,
      maxAbs: this.n > 0 ? this.maxAbs : null,
      bound: Number.isFinite(this.worstBound) && this.n > 0 ? this.worstBound : null,
      tolerance: this.tol,
      comparisons: this.n,
      detail: ok
        ? `${this.n} comparisons; worst ${this.worst || 'n/a'}`
        : `${this.failures} of ${this.n} comparisons failed; worst ${this.worst}\ntolerance: ${this.tol.reason ?? ''}`,
    };
  }
}

function law(
  id: string,
  claim: string,
  needs: readonly OpName[],
  body: (impl: DiffusionOps, tally: Tally, rng: Rng) => Promise<void>,
): Law {
  return {
    id,
    claim,
    needs,
    async run(impl, opts = {}) {
      const tol = opts.tol ?? LAW_TOL[opts.precision ?? impl.precision ?? DEFAULT_PRECISION];
      const missing = needs.filter((op) => typeof impl[op] !== 'function');
      const base = { id, claim, maxAbs: null, bound: null, tolerance: tol, comparisons: 0 };
      if (missing.length > 0) return { ...base, verdict: 'skip', ok: true, detail: `the implementation lacks ${missing.join(', ')}` };
      const tally = new Tally(tol);
      try {
        await body(impl, tally, new Rng(opts.seed ?? 0));
      } catch (e) {
        return { ...base, verdict: 'error', ok: false, detail: `${(e as Error).name}: ${(e as Error).message}` };
      }
      return tally.result({ id, claim });
    },
  };
}

/** Per-element coefficient c[t_b] of a buffer, broadcast over the example b of an NCHW tensor. */
function perElement(buf: Float64Array, t: Tensor, shape: readonly number[]): Float64Array {
  const n = size(shape) / shape[0];
  return Float64Array.from({ length: size(shape) }, (_, i) => buf[t.data[Math.floor(i / n)]]);
}

const abs = Math.abs;

/** A fixed-output model of ε (whatever x and t). */
const fixedOutput = (output: Tensor): ModelSpec => ({ kind: 'output', output });

// ---------------------------------------------------------------------------------------------------------------
// The laws

export const buffersConsistentWithBetas = law(
  'ddpm.ops.buffersConsistentWithBetas',
  'every buffer equals its definition from β (ᾱ = cumprod(1 − β), the posterior coefficients, the clipped log-variance)',
  ['buffers'],
  async (impl, tally) => {
    for (const { name, betas } of schedules()) {
      const got = await impl.buffers!({ betas });
      const ref = referenceBuffers(betas.data);
      const T = betas.data.length;
      const ac = ref.alphas_cumprod;
      // Scale: 1 − ᾱ by subtraction has an absolute error of ε·1, so quantities divided by 1 − ᾱ are compared
      // relative to the size of their terms (value · 1/(1 − ᾱ)).
      for (const k of BUFFER_NAMES) {
        const scale = Float64Array.from({ length: T }, (_, i) => {
          const v = abs(ref[k][i]);
          const inv = 1 / (1 - ac[i]);
          return k.startsWith('posterior') || k.includes('one_minus') || k === 'sqrt_recipm1_alphas_cumprod' ? v * inv + inv * 1e-16 : v;
        });
        tally.close(`${k} [${name}]`, [T], got[k].data, ref[k], scale);
      }
    }
  },
);

export const qSampleEqClosedForm = law(
  'ddpm.ops.qSampleEqClosedForm',
  'q_sample(x₀, t, ε) = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with the implementation’s own buffers',
  ['q_sample'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const eps = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const got = (await impl.q_sample!({ betas }, x0, t, eps)).x_t;
      const a = perElement(buf.sqrt_alphas_cumprod, t, SHAPE);
      const b = perElement(buf.sqrt_one_minus_alphas_cumprod, t, SHAPE);
      const exp = x0.data.map((x, i) => a[i] * x + b[i] * eps.data[i]);
      tally.close(`q_sample [${name}, t=${Array.from(t.data)}]`, SHAPE, got.data, exp, x0.data.map((x, i) => abs(a[i] * x) + abs(b[i] * eps.data[i])));
    }
  },
);

export const qMeanVarianceEqClosedForm = law(
  'ddpm.ops.qMeanVarianceEqClosedForm',
  'q_mean_variance(x₀, t) = (√ᾱ_t·x₀, 1 − ᾱ_t, log(1 − ᾱ_t))',
  ['q_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const t = timesteps(rng, betas.data.length);
      const got = await impl.q_mean_variance!({ betas }, x0, t);
      const a = perElement(buf.sqrt_alphas_cumprod, t, SHAPE);
      const v = perElement(buf.sqrt_one_minus_alphas_cumprod, t, SHAPE).map((s) => s * s);
      tally.close(`mean [${name}]`, SHAPE, got.mean.data, x0.data.map((x, i) => a[i] * x));
      tally.close(`variance [${name}]`, SHAPE, got.variance.data, v);
      tally.close(`log_variance [${name}]`, SHAPE, got.log_variance.data, v.map(Math.log), v.map((x) => 1 + abs(Math.log(x))));
    }
  },
);

export const epsXstartRoundTrip = law(
  'ddpm.ops.epsXstartRoundTrip',
  'predict_xstart_from_eps and predict_eps_from_xstart are mutual inverses at the same (x_t, t)',
  ['predict_xstart_from_eps', 'predict_eps_from_xstart'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const xt = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const t = timesteps(rng, betas.data.length);
      const A = perElement(buf.sqrt_recip_alphas_cumprod, t, SHAPE);
      const B = perElement(buf.sqrt_recipm1_alphas_cumprod, t, SHAPE);
      const x0hat = (await impl.predict_xstart_from_eps!({ betas }, xt, t, eps)).pred_xstart;
      const epsBack = (await impl.predict_eps_from_xstart!({ betas }, xt, t, x0hat)).eps;
      tally.close(`ε → x̂₀ → ε [${name}]`, SHAPE, epsBack.data, eps.data, xt.data.map((x, i) => (2 * abs(A[i] * x) + abs(B[i] * eps.data[i]) + abs(x0hat.data[i])) / B[i]));
      const epsHat = (await impl.predict_eps_from_xstart!({ betas }, xt, t, x0)).eps;
      const x0Back = (await impl.predict_xstart_from_eps!({ betas }, xt, t, epsHat)).pred_xstart;
      tally.close(`x₀ → ε̂ → x₀ [${name}]`, SHAPE, x0Back.data, x0.data, xt.data.map((x, i) => 2 * abs(A[i] * x) + abs(x0.data[i]) + abs(B[i] * epsHat.data[i])));
    }
  },
);

export const posteriorEqCoefficients = law(
  'ddpm.ops.posteriorEqCoefficients',
  'q_posterior_mean_variance = (coef1·x₀ + coef2·x_t, posterior_variance, posterior_log_variance_clipped) of the buffers',
  ['q_posterior_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const xt = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const got = await impl.q_posterior_mean_variance!({ betas }, x0, xt, t);
      const c1 = perElement(buf.posterior_mean_coef1, t, SHAPE);
      const c2 = perElement(buf.posterior_mean_coef2, t, SHAPE);
      tally.close(`mean [${name}]`, SHAPE, got.mean.data, x0.data.map((x, i) => c1[i] * x + c2[i] * xt.data[i]), x0.data.map((x, i) => abs(c1[i] * x) + abs(c2[i] * xt.data[i])));
      tally.close(`variance [${name}]`, SHAPE, got.variance.data, perElement(buf.posterior_variance, t, SHAPE));
      const lv = perElement(buf.posterior_log_variance_clipped, t, SHAPE);
      tally.close(`log_variance_clipped [${name}]`, SHAPE, got.log_variance_clipped.data, lv, lv.map((v) => 1 + abs(v)));
    }
  },
);

export const posteriorVarianceBetweenZeroAndBeta = law(
  'ddpm.ops.posteriorVarianceBetweenZeroAndBeta',
  'the posterior variance is 0 at t = 0 and 0 < β̃_t ≤ β_t for t ≥ 1 (0-based)',
  ['buffers'],
  async (impl, tally) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const pv = buf.posterior_variance;
      tally.close(`posterior_variance[0] [${name}]`, [1], [pv[0]], [0]);
      for (let t = 1; t < pv.length; t++) {
        tally.le(`0 < posterior_variance[${t}] [${name}]`, 0, pv[t], true);
        tally.le(`posterior_variance[${t}] ≤ betas[${t}] [${name}]`, pv[t], buf.betas[t]);
      }
    }
  },
);

export const posteriorAtFirstStepIsX0 = law(
  'ddpm.ops.posteriorAtFirstStepIsX0',
  'at t = 0 (0-based) the posterior q(x_{t−1} | x_t, x₀) is the point mass at x₀: mean x₀, variance 0',
  ['q_posterior_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const xt = normals(rng, SHAPE);
      const got = await impl.q_posterior_mean_variance!({ betas }, x0, xt, allAt(0));
      tally.close(`mean at t=0 [${name}]`, SHAPE, got.mean.data, x0.data, x0.data.map((x, i) => abs(x) + abs(xt.data[i])));
      tally.close(`variance at t=0 [${name}]`, SHAPE, got.variance.data, new Float64Array(size(SHAPE)));
    }
  },
);

export const xprevInvertsPosteriorMean = law(
  'ddpm.ops.xprevInvertsPosteriorMean',
  'predict_xstart_from_xprev inverts the posterior mean: x̂₀(x_t, μ̃(x₀, x_t)) = x₀',
  ['q_posterior_mean_variance', 'predict_xstart_from_xprev'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x0 = uniforms(rng, SHAPE, -1, 1);
      const xt = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const mean = (await impl.q_posterior_mean_variance!({ betas }, x0, xt, t)).mean;
      const back = (await impl.predict_xstart_from_xprev!({ betas }, xt, t, mean)).pred_xstart;
      const c1 = perElement(buf.posterior_mean_coef1, t, SHAPE);
      const c2 = perElement(buf.posterior_mean_coef2, t, SHAPE);
      tally.close(`x₀ → μ̃ → x̂₀ [${name}]`, SHAPE, back.data, x0.data, x0.data.map((x, i) => (abs(c1[i] * x) + 2 * abs(c2[i] * xt.data[i]) + abs(mean.data[i])) / c1[i]));
    }
  },
);

export const epsMeanEqPosteriorOfPredictedXstart = law(
  'ddpm.ops.epsMeanEqPosteriorOfPredictedXstart',
  'with an ε model, p_mean_variance’s mean is (x_t − β_t/√(1−ᾱ_t)·ε)/√α_t (Ho eq. 11), the posterior mean at x̂₀(ε)',
  ['p_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const a: DiffusionArgs & { clip_denoised: boolean } = { betas, model_mean_type: 'EPSILON', model_var_type: 'FIXED_SMALL', clip_denoised: false };
      const got = await impl.p_mean_variance!(a, fixedOutput(eps), x, t);
      const beta = perElement(buf.betas, t, SHAPE);
      const s1 = perElement(buf.sqrt_one_minus_alphas_cumprod, t, SHAPE);
      const A = perElement(buf.sqrt_recip_alphas_cumprod, t, SHAPE);
      const B = perElement(buf.sqrt_recipm1_alphas_cumprod, t, SHAPE);
      const c1 = perElement(buf.posterior_mean_coef1, t, SHAPE);
      const c2 = perElement(buf.posterior_mean_coef2, t, SHAPE);
      const exp = x.data.map((xi, i) => (xi - (beta[i] / s1[i]) * eps.data[i]) / Math.sqrt(1 - beta[i]));
      const scale = x.data.map((xi, i) => (abs(xi) + abs((beta[i] / s1[i]) * eps.data[i])) / Math.sqrt(1 - beta[i]) + c1[i] * (abs(A[i] * xi) + abs(B[i] * eps.data[i])) + abs(c2[i] * xi));
      tally.close(`mean [${name}]`, SHAPE, got.mean.data, exp, scale);
      tally.close(`pred_xstart [${name}]`, SHAPE, got.pred_xstart.data, x.data.map((xi, i) => A[i] * xi - B[i] * eps.data[i]), x.data.map((xi, i) => abs(A[i] * xi) + abs(B[i] * eps.data[i])));
    }
  },
);

export const fixedVariancesAreBetaOrPosterior = law(
  'ddpm.ops.fixedVariancesAreBetaOrPosterior',
  'FIXED_LARGE uses σ² = β_t (β̃ of t = 1 at t = 0) and FIXED_SMALL σ² = β̃_t with the clipped log-variance',
  ['p_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const large = Float64Array.from(buf.betas, (b, i) => (i === 0 ? buf.posterior_variance[1] : b));
      for (const [vt, v, lv] of [
        ['FIXED_LARGE', large, large.map(Math.log)],
        ['FIXED_SMALL', buf.posterior_variance, buf.posterior_log_variance_clipped],
      ] as const) {
        const got = await impl.p_mean_variance!({ betas, model_mean_type: 'EPSILON', model_var_type: vt, clip_denoised: true }, fixedOutput(eps), x, t);
        tally.close(`${vt} variance [${name}]`, SHAPE, got.variance.data, perElement(v, t, SHAPE));
        const lve = perElement(lv, t, SHAPE);
        tally.close(`${vt} log_variance [${name}]`, SHAPE, got.log_variance.data, lve, lve.map((q) => 1 + abs(q)));
      }
    }
  },
);

export const finalStepAddsNoNoise = law(
  'ddpm.ops.finalStepAddsNoNoise',
  'the last ancestral step (t = 0) adds no noise: its sample does not depend on the noise and equals the mean',
  ['p_sample_step'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const n1 = normals(rng, SHAPE);
      const n2 = tensor(SHAPE, n1.data.map((v) => 1 - 3 * v));
      for (const vt of ['FIXED_LARGE', 'FIXED_SMALL'] as const) {
        const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: vt, clip_denoised: true };
        const s1 = (await impl.p_sample_step!(a, fixedOutput(eps), x, allAt(0), n1)).sample;
        const s2 = (await impl.p_sample_step!(a, fixedOutput(eps), x, allAt(0), n2)).sample;
        tally.close(`${vt} sample(noise) vs sample(1 − 3·noise) at t=0 [${name}]`, SHAPE, s2.data, s1.data, s1.data.map((v) => 1 + abs(v)));
        if (impl.p_mean_variance) {
          const m = (await impl.p_mean_variance(a, fixedOutput(eps), x, allAt(0))).mean;
          tally.close(`${vt} sample vs mean at t=0 [${name}]`, SHAPE, s1.data, m.data, m.data.map((v) => 1 + abs(v)));
        }
      }
    }
  },
);

export const ancestralStepEqMeanPlusNoise = law(
  'ddpm.ops.ancestralStepEqMeanPlusNoise',
  'for t ≥ 1 an ancestral step returns mean + exp(½·log σ²)·noise with the mean and log-variance of p_mean_variance',
  ['p_sample_step', 'p_mean_variance'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const T = betas.data.length;
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const noise = normals(rng, SHAPE);
      const t = tensor([3], Float64Array.from([1, 1 + rng.int(T - 1), T - 1]));
      for (const vt of ['FIXED_LARGE', 'FIXED_SMALL'] as const) {
        const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: vt, clip_denoised: true };
        const got = (await impl.p_sample_step!(a, fixedOutput(eps), x, t, noise)).sample;
        const p = await impl.p_mean_variance!(a, fixedOutput(eps), x, t);
        const sd = p.log_variance.data.map((lv) => Math.exp(0.5 * lv));
        tally.close(`${vt} sample [${name}]`, SHAPE, got.data, p.mean.data.map((m, i) => m + sd[i] * noise.data[i]), p.mean.data.map((m, i) => abs(m) + abs(sd[i] * noise.data[i])));
      }
    }
  },
);

export const ddimEtaZeroIgnoresNoise = law(
  'ddpm.ops.ddimEtaZeroIgnoresNoise',
  'a DDIM step with η = 0 is deterministic: its sample does not depend on the noise',
  ['ddim_step'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const n1 = normals(rng, SHAPE);
      const n2 = tensor(SHAPE, n1.data.map((v) => 1 - 3 * v));
      const t = timesteps(rng, betas.data.length);
      const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: 'FIXED_LARGE' as const, clip_denoised: true, eta: 0 };
      const s1 = (await impl.ddim_step!(a, fixedOutput(eps), x, t, n1)).sample;
      const s2 = (await impl.ddim_step!(a, fixedOutput(eps), x, t, n2)).sample;
      tally.close(`sample(noise) vs sample(1 − 3·noise) [${name}]`, SHAPE, s2.data, s1.data, s1.data.map((v) => 1 + abs(v)));
    }
  },
);

export const ddimEtaOneEqAncestral = law(
  'ddpm.ops.ddimEtaOneEqAncestral',
  'a DDIM step with η = 1 equals the ancestral step with σ_t² = β̃_t (FIXED_SMALL) for the same ε and noise',
  ['ddim_step', 'p_sample_step'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const buf = await buffersOf(impl, betas);
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const noise = normals(rng, SHAPE);
      const t = timesteps(rng, betas.data.length);
      const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: 'FIXED_SMALL' as const, clip_denoised: false };
      const d = (await impl.ddim_step!({ ...a, eta: 1 }, fixedOutput(eps), x, t, noise)).sample;
      const p = (await impl.p_sample_step!(a, fixedOutput(eps), x, t, noise)).sample;
      const A = perElement(buf.sqrt_recip_alphas_cumprod, t, SHAPE);
      const B = perElement(buf.sqrt_recipm1_alphas_cumprod, t, SHAPE);
      const c2 = perElement(buf.posterior_mean_coef2, t, SHAPE);
      const sd = perElement(buf.posterior_variance, t, SHAPE).map(Math.sqrt);
      // Both paths go through x̂₀ = A·x − B·ε (error ∝ its terms, times a coefficient ≤ 1) and add terms of size |x|, |ε|, |σ·z|.
      const scale = x.data.map((xi, i) => 2 * (abs(A[i] * xi) + abs(B[i] * eps.data[i])) + abs(c2[i] * xi) + abs(eps.data[i]) + abs(sd[i] * noise.data[i]));
      tally.close(`DDIM(η=1) vs ancestral(β̃) [${name}, t=${Array.from(t.data)}]`, SHAPE, d.data, p.data, scale);
    }
  },
);

export const ddimReverseInvertsDdim = law(
  'ddpm.ops.ddimReverseInvertsDdim',
  'with a model whose ε does not change, a reverse-DDIM step t → t+1 followed by a DDIM step (η = 0) t+1 → t returns x_t',
  ['ddim_reverse_step', 'ddim_step'],
  async (impl, tally, rng) => {
    for (const { name, betas } of schedules()) {
      const T = betas.data.length;
      const buf = await buffersOf(impl, betas);
      const x = normals(rng, SHAPE);
      const eps = normals(rng, SHAPE);
      const t = tensor([3], Float64Array.from([0, rng.int(T - 1), T - 2]));
      const t1 = tensor([3], t.data.map((v) => v + 1));
      const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: 'FIXED_LARGE' as const, clip_denoised: false };
      const up = (await impl.ddim_reverse_step!(a, fixedOutput(eps), x, t)).sample;
      const back = (await impl.ddim_step!({ ...a, eta: 0 }, fixedOutput(eps), up, t1, eps)).sample;
      const A0 = perElement(buf.sqrt_recip_alphas_cumprod, t, SHAPE);
      const B0 = perElement(buf.sqrt_recipm1_alphas_cumprod, t, SHAPE);
      const A1 = perElement(buf.sqrt_recip_alphas_cumprod, t1, SHAPE);
      const B1 = perElement(buf.sqrt_recipm1_alphas_cumprod, t1, SHAPE);
      const scale = x.data.map((xi, i) => abs(A0[i] * xi) + abs(B0[i] * eps.data[i]) + abs(A1[i] * up.data[i]) + abs(B1[i] * eps.data[i]) + abs(xi));
      tally.close(`x_t → x_{t+1} → x_t [${name}, t=${Array.from(t.data)}]`, SHAPE, back.data, x.data, scale);
    }
  },
);

export const discretizedLikelihoodSumsToOne = law(
  'ddpm.ops.discretizedLikelihoodSumsToOne',
  'the discretised Gaussian gives the 256 pixel levels probabilities that sum to 1',
  ['discretized_gaussian_log_likelihood'],
  async (impl, tally) => {
    const levels = Float64Array.from({ length: 256 }, (_, k) => k / 127.5 - 1);
    for (const [mean, logScale] of [[0, -1], [-0.9, -2], [0.95, -3], [0.3, 0.5], [1, -4.5]]) {
      const m = tensor([256], new Float64Array(256).fill(mean));
      const ls = tensor([256], new Float64Array(256).fill(logScale));
      const lp = (await impl.discretized_gaussian_log_likelihood!(tensor([256], levels), m, ls)).log_probs;
      let sum = 0;
      for (const v of lp.data) sum += Math.exp(v);
      tally.close(`Σ_k P(level k | μ = ${mean}, log σ = ${logScale})`, [1], [sum], [1], 256);
      for (let k = 0; k < 256; k++) tally.le(`log P(level ${k} | μ = ${mean}, log σ = ${logScale}) ≤ 0`, lp.data[k], 0);
    }
  },
);

export const normalKlIsDivergence = law(
  'ddpm.ops.normalKlIsDivergence',
  'normal_kl is 0 between equal Gaussians and ≥ 0 otherwise',
  ['normal_kl'],
  async (impl, tally, rng) => {
    const n = 64;
    const m1 = normals(rng, [n]);
    const m2 = normals(rng, [n]);
    const lv1 = uniforms(rng, [n], -6, 2);
    const lv2 = uniforms(rng, [n], -6, 2);
    const self = (await impl.normal_kl!(m1, lv1, m1, lv1)).kl;
    tally.close('KL(N(m, e^lv) ‖ N(m, e^lv))', [n], self.data, new Float64Array(n), lv1.data.map((v) => 2 + abs(v)));
    const kl = (await impl.normal_kl!(m1, lv1, m2, lv2)).kl;
    for (let i = 0; i < n; i++) {
      const scale = 1 + abs(lv2.data[i] - lv1.data[i]) + Math.exp(lv1.data[i] - lv2.data[i]) + (m1.data[i] - m2.data[i]) ** 2 * Math.exp(-lv2.data[i]);
      tally.nonneg(`KL[${i}]`, kl.data[i], scale);
    }
  },
);

export const bpdTotalEqPriorPlusTerms = law(
  'ddpm.ops.bpdTotalEqPriorPlusTerms',
  'calc_bpd_loop’s total is the prior term plus the sum of its per-timestep terms, and the prior term is KL(q(x_T | x₀) ‖ N(0, I)) in bits per dimension',
  ['calc_bpd_loop', 'q_mean_variance'],
  async (impl, tally, rng) => {
    const T = 20;
    const betas = tensor([T], Float64Array.from(cosineBetas(T)));
    const x0 = tensor(SHAPE, Float64Array.from({ length: size(SHAPE) }, () => rng.int(256) / 127.5 - 1));
    const noise = normals(rng, [T, ...SHAPE]);
    const output = normals(rng, SHAPE);
    const r = await impl.calc_bpd_loop!({ betas, model_mean_type: 'EPSILON', model_var_type: 'FIXED_LARGE', clip_denoised: true }, fixedOutput(output), x0, noise);
    const B = SHAPE[0];
    const n = size(SHAPE) / B;
    const q = await impl.q_mean_variance!({ betas }, x0, allAt(T - 1));
    for (let b = 0; b < B; b++) {
      const terms = r.vb.data.subarray(b * T, (b + 1) * T);
      const sum = terms.reduce((a, v) => a + v, 0);
      tally.close(`total_bpd[${b}]`, [1], [r.total_bpd.data[b]], [r.prior_bpd.data[b] + sum], 1 + abs(sum));
      let kl = 0;
      for (let i = b * n; i < (b + 1) * n; i++) {
        const m = q.mean.data[i];
        const v = q.variance.data[i];
        kl += 0.5 * (v + m * m - 1 - Math.log(v));
      }
      tally.close(`prior_bpd[${b}]`, [1], [r.prior_bpd.data[b]], [kl / (n * Math.LN2)], 1 + kl / (n * Math.LN2));
    }
  },
);

/** Every law of the diffusion model, in derivation order. */
export const DDPM_LAWS: readonly Law[] = [
  buffersConsistentWithBetas,
  qSampleEqClosedForm,
  qMeanVarianceEqClosedForm,
  posteriorEqCoefficients,
  posteriorVarianceBetweenZeroAndBeta,
  posteriorAtFirstStepIsX0,
  xprevInvertsPosteriorMean,
  epsXstartRoundTrip,
  epsMeanEqPosteriorOfPredictedXstart,
  fixedVariancesAreBetaOrPosterior,
  ancestralStepEqMeanPlusNoise,
  finalStepAddsNoNoise,
  ddimEtaZeroIgnoresNoise,
  ddimEtaOneEqAncestral,
  ddimReverseInvertsDdim,
  normalKlIsDivergence,
  bpdTotalEqPriorPlusTerms,
  discretizedLikelihoodSumsToOne,
];

/** Run every law on an implementation. */
export async function runDdpmLaws(impl: DiffusionOps, opts: LawOptions = {}): Promise<LawResult[]> {
  const out: LawResult[] = [];
  for (const l of DDPM_LAWS) out.push(await l.run(impl, opts));
  return out;
}
