import { describe, it } from 'vitest';
import fc from 'fast-check';
import type { LossType, ModelMeanType, ModelVarType, Tensor } from '../../src/conformance/ops.ts';
import { createSpecOps } from '../../src/conformance/impl/spec.ts';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { normalCdf } from '../../spec/gaussian/normal1d.ts';
import { klDiagGaussian } from '../../spec/gaussian/kl.ts';
import { AGREE, diffusionCaseArb, expectAgree, expectWithin, normals, perExample, size, tensor, tinyModel64 } from './agree.ts';

const spec = createSpecOps();
const ref = referenceOps();
const RUNS = { numRuns: 25 };
/** float32 unit roundoff. */
const U = 2 ** -24;

const MEANS: ModelMeanType[] = ['EPSILON', 'START_X', 'PREVIOUS_X'];
const VARS: ModelVarType[] = ['FIXED_SMALL', 'FIXED_LARGE', 'LEARNED', 'LEARNED_RANGE'];

async function buffersOf(betas: Tensor): Promise<Record<string, Float64Array>> {
  return Object.fromEntries(Object.entries(await spec.buffers!({ betas })).map(([k, v]) => [k, v.data]));
}

/** A TinyModel with weights ~ N(0, 0.5²) (outputs of order 1, so learned log-variances stay in a sane range). */
function tiny(seed: number, C: number, learned: boolean) {
  const O = learned ? 2 * C : C;
  return { kind: 'tiny' as const, W: normals(seed, [O, C], 0.5), bias: normals(seed + 1, [O], 0.5), tw: normals(seed + 2, [O], 0.5) };
}

/** k units of float32 roundoff of a magnitude M, expressed as a scale for {@link AGREE} (bound = atol + rtol·scale). */
const inU = (k: number): number => (k * U) / AGREE.rtol;

/**
 * Magnitudes of the terms behind x̂₀, ε̂, the mean and log σ² (per element), from float64 quantities: x̂₀ is
 * √(1/ᾱ)·x − √(1/ᾱ−1)·out (ε), out (x₀) or out/c₁ − (c₂/c₁)·x (x_{t−1}); ε̂ = (√(1/ᾱ)·x − x̂₀)/√(1/ᾱ−1); the mean is
 * c₁·x̂₀ + c₂·x (or out); learned-range log σ² = f·log β + (1−f)·log β̃ with f = (v+1)/2. `out`/`mag` are the
 * model's output and the magnitude of its terms (the model itself runs in float32 on the reference).
 */
function termScales(
  b: Record<string, Float64Array>,
  mean: ModelMeanType,
  vart: ModelVarType,
  t: number[],
  x: Tensor,
  out: Tensor,
  mag: Float64Array,
  logVar: Tensor,
) {
  const shape = x.shape;
  const n = size(shape);
  const C = shape[1];
  const learned = vart === 'LEARNED' || vart === 'LEARNED_RANGE';
  const per = (a: ArrayLike<number>) => perExample(Float64Array.from(a), t, shape);
  const ra = per(b.sqrt_recip_alphas_cumprod);
  const rm1 = per(b.sqrt_recipm1_alphas_cumprod);
  const c1 = per(b.posterior_mean_coef1);
  const c2 = per(b.posterior_mean_coef2);
  const lb = per(b.betas.map(Math.log));
  const lp = per(b.posterior_log_variance_clipped);
  const HW = n / shape[0] / C;
  // Index of element i's mean-part (k = 0) or variance-part (k = 1) channel in the model output.
  const at = (i: number, k: number) => Math.floor(i / (C * HW)) * (learned ? 2 : 1) * C * HW + k * C * HW + (i % (C * HW));
  const om = Float64Array.from({ length: n }, (_, i) => mag[at(i, 0)]);
  const x0 = Float64Array.from({ length: n }, (_, i) =>
    mean === 'EPSILON' ? ra[i] * Math.abs(x.data[i]) + rm1[i] * om[i] : mean === 'START_X' ? om[i] : om[i] / c1[i] + (c2[i] / c1[i]) * Math.abs(x.data[i]),
  );
  const eps = Float64Array.from({ length: n }, (_, i) => (ra[i] * Math.abs(x.data[i]) + x0[i]) / rm1[i]);
  const m = Float64Array.from({ length: n }, (_, i) => (mean === 'PREVIOUS_X' ? om[i] : c1[i] * x0[i] + c2[i] * Math.abs(x.data[i])));
  const lv = Float64Array.from({ length: n }, (_, i) => {
    if (!learned) return Math.abs(logVar.data[i]);
    const v = out.data[at(i, 1)];
    const vm = mag[at(i, 1)] + Math.abs(v);
    if (vart === 'LEARNED') return vm;
    const f = (v + 1) / 2;
    return Math.abs(f * lb[i]) + Math.abs((1 - f) * lp[i]) + 0.5 * (Math.abs(lb[i]) + Math.abs(lp[i])) * (vm + 2);
  });
  return { x0, eps, m, lv };
}

/** Scale of √(1 − c) when 1 − c is formed in float32 from float32 c: its absolute error ~u·(1 + c) is amplified by 1/(2√(1 − c)). */
const sqrtOneMinus = (c: number): number => (c >= 1 ? 0 : Math.sqrt(1 - c) + inU((2 * (1 + c)) / (2 * Math.sqrt(1 - c))));

describe('4.5 Reference vs spec: sampling steps', () => {
  it('one ancestral step agrees with the spec for every mean and variance type, with the TinyModel, no noise at t = 0  [reference.sampling.ancestralAgreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, fc.constantFrom(...MEANS), fc.constantFrom(...VARS), fc.boolean(), async (c, mean, vart, clip) => {
        const learned = vart === 'LEARNED' || vart === 'LEARNED_RANGE';
        const C = c.shape[1];
        const x = normals(c.seed, c.shape);
        const noise = normals(c.seed + 1, c.shape);
        const model = tiny(c.seed + 2, C, learned);
        const t = tensor([c.t.length], c.t);
        const a = { betas: c.betas, model_mean_type: mean, model_var_type: vart, clip_denoised: clip };
        const r = await ref.p_sample_step!(a, model, x, t, noise);
        const s = await spec.p_sample_step!(a, model, x, t, noise);
        const pmv = await spec.p_mean_variance!(a, model, x, t);
        const { out, mag } = tinyModel64(model.W, model.bias, model.tw, x, c.t);
        const sc = termScales(await buffersOf(c.betas), mean, vart, c.t, x, out, mag, pmv.log_variance);
        const what = `${c.name} ${vart}/${mean}${clip ? ' clip' : ''} t=[${c.t}]`;
        expectAgree(`p_sample pred_xstart ${what}`, r.pred_xstart, s.pred_xstart, sc.x0);
        // x_{t−1} = μ + σz: σ = e^{½ log σ²} has the relative error ½·|Δ log σ²|.
        const lv = pmv.log_variance.data;
        expectAgree(`p_sample sample ${what}`, r.sample, s.sample, Float64Array.from(sc.m, (m, i) => m + Math.exp(0.5 * lv[i]) * Math.abs(noise.data[i]) * (1 + 0.5 * sc.lv[i])));
      }),
      RUNS,
    ));

  it('one DDIM step (η ∈ [0, 1]) and one reverse-DDIM step agree with the spec  [reference.sampling.ddimAgreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(diffusionCaseArb, fc.constantFrom(...MEANS), fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true }), async (c, mean, clip, eta) => {
        const C = c.shape[1];
        const x = normals(c.seed, c.shape);
        const noise = normals(c.seed + 1, c.shape);
        const model = tiny(c.seed + 2, C, false);
        const t = tensor([c.t.length], c.t);
        const a = { betas: c.betas, model_mean_type: mean, model_var_type: 'FIXED_LARGE' as const, clip_denoised: clip };
        const b = await buffersOf(c.betas);
        const { out, mag } = tinyModel64(model.W, model.bias, model.tw, x, c.t);
        const sc = termScales(b, mean, 'FIXED_LARGE', c.t, x, out, mag, x);
        const what = `${c.name} ${mean}${clip ? ' clip' : ''} η=${eta} t=[${c.t}]`;
        const ab = perExample(b.alphas_cumprod, c.t, c.shape);
        const abp = perExample(b.alphas_cumprod_prev, c.t, c.shape);
        const abn = perExample(b.alphas_cumprod_next, c.t, c.shape);
        const r = await ref.ddim_step!({ ...a, eta }, model, x, t, noise);
        const s = await spec.ddim_step!({ ...a, eta }, model, x, t, noise);
        expectAgree(`ddim pred_xstart ${what}`, r.pred_xstart, s.pred_xstart, sc.x0);
        // σ = η·√((1−ᾱ_{t−1})/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t−1}): each 1 − c is formed in float32 from float32 ᾱ, as in the public code.
        const ddimScale = Float64Array.from(sc.x0, (x0, i) => {
          const ratio = ab[i] / abp[i];
          const sigma = eta * Math.sqrt((1 - abp[i]) / (1 - ab[i])) * Math.sqrt(Math.max(0, 1 - ratio));
          const sigmaScale = sigma === 0 ? 0 : sigma * inU(2 * (3 + (1 + abp[i]) / (2 * (1 - abp[i])) + (1 + ab[i]) / (2 * (1 - ab[i])) + (1 + ratio) / (2 * (1 - ratio))));
          return Math.sqrt(abp[i]) * x0 + sqrtOneMinus(abp[i] + sigma * sigma) * sc.eps[i] + (sigma + sigmaScale) * Math.abs(noise.data[i]);
        });
        expectAgree(`ddim sample ${what}`, r.sample, s.sample, ddimScale);
        const rr = await ref.ddim_reverse_step!(a, model, x, t);
        const sr = await spec.ddim_reverse_step!(a, model, x, t);
        expectAgree(`ddim reverse sample ${what}`, rr.sample, sr.sample, Float64Array.from(sc.x0, (x0, i) => Math.sqrt(abn[i]) * x0 + sqrtOneMinus(abn[i]) * sc.eps[i]));
      }),
      RUNS,
    ));
});

describe('4.6 Reference vs spec: training losses', () => {
  it('the MSE, hybrid and KL training terms agree with the spec’s posterior, reverse process and Gaussian KL (t ≥ 1)  [reference.losses.agreeWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(
        diffusionCaseArb,
        fc.constantFrom<LossType>('MSE', 'RESCALED_MSE', 'KL', 'RESCALED_KL'),
        fc.constantFrom(...MEANS),
        fc.constantFrom(...VARS),
        async (c, loss, mean, vart) => {
          const learned = vart === 'LEARNED' || vart === 'LEARNED_RANGE';
          const [B, C] = c.shape;
          const T = c.betas.data.length;
          const D = size(c.shape) / B;
          // x₀ on the pixel grid, as training data.
          const x0 = tensor(c.shape, normals(c.seed, c.shape).data.map((v) => Math.round(Math.max(-1, Math.min(1, v / 2)) * 127.5) / 127.5));
          const noise = normals(c.seed + 1, c.shape);
          const model = tiny(c.seed + 2, C, learned);
          const t = tensor([B], c.t);
          const args = { betas: c.betas, model_mean_type: mean, model_var_type: vart };
          const r = await ref.training_losses!({ ...args, loss_type: loss }, model, x0, t, noise);
          // The spec side: x_t, the model in float64, the posterior and p(x_{t−1}|x_t) from the spec.
          const xt = (await spec.q_sample!(args, x0, t, noise)).x_t;
          const { out, mag } = tinyModel64(model.W, model.bias, model.tw, xt, c.t);
          const post = await spec.q_posterior_mean_variance!(args, x0, xt, t);
          const pmv = await spec.p_mean_variance!({ ...args, clip_denoised: false }, { kind: 'output', output: out }, xt, t);
          const sc = termScales(await buffersOf(c.betas), mean, vart, c.t, xt, out, mag, pmv.log_variance);
          const what = `${c.name} ${loss} ${vart}/${mean} t=[${c.t}]`;
          const kl = new Float64Array(B);
          const klScale = new Float64Array(B);
          for (let b = 0; b < B; b++) {
            if (c.t[b] === 0) {
              kl[b] = NaN; // the decoder term: not compared here (mask below)
              klScale[b] = 1;
              continue;
            }
            const sl = (x: Tensor) => Array.from(x.data.subarray(b * D, (b + 1) * D));
            kl[b] = klDiagGaussian(sl(post.mean), sl(post.variance), sl(pmv.mean), sl(pmv.variance)) / D / Math.LN2;
            let s = 0;
            for (let i = b * D; i < (b + 1) * D; i++) {
              const d = Math.abs(post.mean.data[i] - pmv.mean.data[i]);
              const l1 = post.log_variance_clipped.data[i];
              const l2 = pmv.log_variance.data[i];
              // The terms of ½(−1 + l₂ − l₁ + e^{l₁−l₂} + d²e^{−l₂}); d's own error (two means of scale m) times ∂KL/∂d = d·e^{−l₂};
              // l₂'s error (scale lv) times |∂KL/∂l₂| ≤ ½(1 + e^{l₁−l₂} + d²e^{−l₂}).
              const e12 = Math.exp(l1 - l2);
              const dd = d * d * Math.exp(-l2);
              s += 0.5 * (1 + Math.abs(l1) + Math.abs(l2) + e12 + dd) + d * Math.exp(-l2) * 2 * sc.m[i] + 0.5 * (1 + e12 + dd) * sc.lv[i];
            }
            klScale[b] = s / D / Math.LN2;
          }
          // t = 0 holds the decoder NLL: the spec's uses the exact Φ, the reference the public code's tanh approximation (4.7, 5.3).
          const t0 = (b: number) => c.t[b] !== 0;
          if (loss === 'KL' || loss === 'RESCALED_KL') {
            const f = loss === 'RESCALED_KL' ? T : 1;
            expectWithin(`KL loss ${what}`, r.terms.loss, tensor([B], kl.map((v) => v * f)), klScale.map((s) => (AGREE.atol + AGREE.rtol * s) * f), AGREE.reason!, t0);
            return;
          }
          const target = mean === 'EPSILON' ? noise : mean === 'START_X' ? x0 : post.mean;
          const HW = D / C;
          const mse = new Float64Array(B);
          const mseScale = new Float64Array(B);
          for (let b = 0; b < B; b++)
            for (let k = 0; k < D; k++) {
              const o = out.data[b * (learned ? 2 : 1) * D + k];
              const om = mag[b * (learned ? 2 : 1) * D + k];
              const tg = target.data[b * D + k];
              mse[b] += (tg - o) ** 2 / D;
              // (target − out)²: error ≈ 2|target − out|·(error of out and target) + rounding of the square.
              mseScale[b] += (2 * Math.abs(tg - o) * (om + Math.abs(tg) + (mean === 'PREVIOUS_X' ? sc.m[b * D + k] : 0)) + (tg - o) ** 2) / D;
              void HW;
            }
          expectWithin(`mse ${what}`, r.terms.mse, tensor([B], mse), mseScale.map((s) => AGREE.atol + AGREE.rtol * s), AGREE.reason!);
          if (learned) {
            const f = loss === 'RESCALED_MSE' ? T / 1000 : 1;
            expectWithin(`vb ${what}`, r.terms.vb, tensor([B], kl.map((v) => v * f)), klScale.map((s) => (AGREE.atol + AGREE.rtol * s) * f), AGREE.reason!, t0);
          }
        },
      ),
      RUNS,
    ));
});

describe('4.7 The discretised decoder and its CDF against the exact normal CDF', () => {
  it('the approximate standard-normal CDF is within 1.8e−4 of Φ everywhere (Page 1977), plus float32 rounding  [reference.decoder.cdfNearExact]', () =>
    fc.assert(
      fc.asyncProperty(fc.array(fc.double({ min: -12, max: 12, noNaN: true }), { minLength: 1, maxLength: 64 }), async (xs) => {
        const x = tensor([xs.length], xs.map(Math.fround));
        const r = await ref.approx_standard_normal_cdf!(x);
        expectWithin(
          'approx_standard_normal_cdf',
          r.cdf,
          tensor([xs.length], x.data.map((v) => normalCdf(v, 0, 1))),
          new Float64Array(xs.length).fill(1.79e-4 + 2e-7),
          'the tanh approximation errs by at most 1.789e−4 (at |x| ≈ 2.59, measured in float64 on a 1e−4 grid over [−12, 12]); float32 adds ~2 ulps of 1',
        );
      }),
      RUNS,
    ));

  it('the discretised log-likelihood agrees with the spec’s (exact Φ) within the CDF approximation’s error on each bin, for z ≤ 3  [reference.decoder.agreesWithSpec]', () =>
    fc.assert(
      fc.asyncProperty(
        // Pixel levels k ∈ {0, …, 255} (the edges ±1 included); z = (x − μ)/σ ∈ [−3, 3] (beyond, float32 quantises the
        // CDFs: 5.3); log σ ∈ [−6, 1] (from far narrower than a bin to wider than the data range).
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: -6, max: 1, noNaN: true })), { minLength: 1, maxLength: 64 }),
        async (cases) => {
          const n = cases.length;
          const x = tensor([n], cases.map(([k]) => Math.fround(k / 127.5 - 1)));
          const ls = tensor([n], cases.map(([, , s]) => Math.fround(s)));
          const means = tensor([n], cases.map(([, z], i) => Math.fround(x.data[i] - z * Math.exp(ls.data[i]))));
          const r = await ref.discretized_gaussian_log_likelihood!(x, means, ls);
          const s = await spec.discretized_gaussian_log_likelihood!(x, means, ls);
          const A = (z: number) => 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
          const bound = Float64Array.from({ length: n }, (_, i) => {
            const inv = Math.exp(-ls.data[i]);
            const zp = (x.data[i] - means.data[i] + 1 / 255) * inv;
            const zm = (x.data[i] - means.data[i] - 1 / 255) * inv;
            const lo = x.data[i] < -0.999 ? 0 : normalCdf(zm, 0, 1);
            const hi = x.data[i] > 0.999 ? 1 : normalCdf(zp, 0, 1);
            const err = (x.data[i] > 0.999 ? 0 : Math.abs(A(zp) - normalCdf(zp, 0, 1))) + (x.data[i] < -0.999 ? 0 : Math.abs(A(zm) - normalCdf(zm, 0, 1)));
            const mass = Math.max(hi - lo, 1e-300);
            return (2 * err + 8 * U) / mass + 1e-5;
          });
          expectWithin(
            'discretized_gaussian_log_likelihood',
            r.log_probs,
            s.log_probs,
            bound,
            "|Δ log P| ≤ 2·(|A(z₊) − Φ(z₊)| + |A(z₋) − Φ(z₋)|)/P + 8u/P: the tanh approximation A's error on the bin's edges, and float32 rounding of two CDFs near 1, relative to the bin's mass P",
          );
        },
      ),
      RUNS,
    ));
});

describe('4.8 Timestep embeddings against their float64 definition', () => {
  it("Ho's and improved's embeddings equal sin/cos of t·ω_i within the error of a float32 argument  [reference.embedding.eqDefinition]", () =>
    fc.assert(
      fc.asyncProperty(
        // dim 1 and ≥ 4 (Ho's divides by ⌊dim/2⌋ − 1); t ∈ [0, 4000]: the golden data's range, integer and fractional.
        fc.constantFrom<'ho' | 'improved'>('ho', 'improved'),
        fc.oneof(fc.constant(1), fc.integer({ min: 4, max: 64 })),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.double({ min: 0, max: 4000, noNaN: true })), { minLength: 1, maxLength: 8 }),
        async (flavor, dim, ts) => {
          const t = tensor([ts.length], ts.map(Math.fround));
          const r = await ref.timestep_embedding!({ flavor, dim }, t);
          const half = Math.floor(dim / 2);
          const width = flavor === 'improved' && dim === 1 ? 0 : dim;
          const want = new Float64Array(ts.length * width);
          const bound = new Float64Array(ts.length * width).fill(1e-6);
          for (let b = 0; b < ts.length; b++)
            for (let i = 0; i < half; i++) {
              const e = flavor === 'ho' ? (-i * Math.log(10000)) / (half - 1) : (-Math.log(10000) * i) / half;
              const w = Math.exp(e);
              const arg = t.data[b] * w;
              const [first, second] = flavor === 'ho' ? [Math.sin(arg), Math.cos(arg)] : [Math.cos(arg), Math.sin(arg)];
              want[b * width + i] = first;
              want[b * width + half + i] = second;
              bound[b * width + i] = bound[b * width + half + i] = 1e-6 + U * arg * (2 * Math.abs(e) + 4);
            }
          expectWithin(
            `timestep_embedding ${flavor} dim ${dim}`,
            r.embedding,
            tensor([ts.length, width], want),
            bound,
            'ω_i = exp(e_i) is formed in float32 as the public code does (e_i from two roundings: relative error (2|e_i| + 1)·u in ω_i), then t·ω_i is rounded and reduced by 2π: |Δ arg| ≤ (2|e_i| + 4)·u·t·ω_i; plus 1e−6 for sin/cos on [−π, π] (WGSL on the webgpu backend)',
          );
        },
      ),
      RUNS,
    ));
});
