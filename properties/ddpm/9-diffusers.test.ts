/**
 * diffusers' scheduler conventions (spec/ddpm/diffusers.ts) against data recorded from diffusers itself
 * (golden/upstream/diffusers_*, generator golden/generators/record_diffusers.py), against the spec's Ho / DDIM
 * definitions where the conventions agree, and diffusers' own scheduler tests rerun with their fixtures.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ancestralStep,
  ddimStep,
  diffusersBuffers,
  diffusersConfig,
  diffusersDdimPreviousTimestep,
  diffusersDdimStep,
  diffusersDdpmStep,
  diffusersDdpmVariance,
  diffusersPreviousTimestep,
  diffusersTimesteps,
  dynamicThreshold,
  fixedReverseVariance,
  makeSchedule,
  type DiffusersBetaSchedule,
  type DiffusersBuffers,
  type DiffusersConfigInput,
} from '../../spec/ddpm/index.ts';
import { decodeTensor } from '../../src/formats/jsonTensor.ts';
import { addNoise, BASE, BUFFER_TOL, dummyModel, fixture, flat, load, loopTol, noiseOf, sumAbs, TESTS, ZSNR_TOL } from './diffusers.ts';
import { override, TOL } from '../../src/numeric/tolerance.ts';

function ddpmFullLoop(cfg: DiffusersConfigInput, noise: Float32Array): number[] {
  const b = diffusersBuffers({ ...BASE, variance_type: 'fixed_small', ...cfg });
  let x = fixture();
  const D = x.length;
  for (let t = 999; t >= 0; t--) {
    const z = t > 0 ? noise.subarray((999 - t) * D, (1000 - t) * D) : x;
    x = diffusersDdpmStep(b, t, t - 1, x, dummyModel(x, t), z).prevSample;
  }
  return x;
}
function ddpmWithNoise(buffers: 'float32' | 'float64'): number[] {
  const b = diffusersBuffers({ ...BASE, variance_type: 'fixed_small', buffers });
  let x = addNoise(b, fixture(), fixture(true), 1);
  const z = noiseOf('ddpm.test_full_loop_with_noise');
  for (const t of [1, 0]) x = diffusersDdpmStep(b, t, t - 1, x, dummyModel(x, t), t > 0 ? z : x).prevSample;
  return x;
}
function ddimLoop(cfg: DiffusersConfigInput, tStart = 0): number[] {
  const b = diffusersBuffers({ ...BASE, ...cfg });
  const ts = diffusersTimesteps(b.config, 10).slice(tStart);
  let x = tStart > 0 ? addNoise(b, fixture(), fixture(true), ts[0]) : fixture();
  for (const t of ts) x = diffusersDdimStep(b, t, diffusersDdimPreviousTimestep(b.config, t, 10), x, dummyModel(x, t), 0, x).prevSample;
  return x;
}

describe('3.9 diffusers: configuration, timesteps and buffers (recorded from diffusers 58eb52c)', () => {
  it("parses every recorded scheduler config, and names the field of a bad one  [ddpm.diffusers.configParsesUpstream]", () => {
    for (const c of [...load('diffusers_buffers.json').cases, ...load('diffusers_loops.json').cases]) expect(() => diffusersConfig(c.config)).not.toThrow();
    expect(() => diffusersConfig({ timestep_spacing: 'even' as never })).toThrow(/^diffusersConfig: timestep_spacing /);
    expect(() => diffusersConfig({ num_train_timesteps: 0 })).toThrow(/num_train_timesteps/);
  });

  it("set_timesteps, DDPM's previous_timestep and DDIM's t − T//n equal diffusers' for every recorded spacing, offset and n  [ddpm.diffusers.timestepsEqUpstream]", () => {
    const f = 'diffusers_set_timesteps.json';
    for (const [i, c] of load(f).cases.entries()) {
      const cfg = diffusersConfig({ num_train_timesteps: c.T, timestep_spacing: c.timestep_spacing, steps_offset: c.steps_offset });
      const ts = diffusersTimesteps(cfg, c.n);
      const where = `cases[${i}] T=${c.T} ${c.timestep_spacing} offset ${c.steps_offset} n=${c.n}`;
      expect(ts, where).toEqual(flat(c.timesteps, f, `${where}.timesteps`));
      expect(ts.map((t) => diffusersPreviousTimestep(t, ts)), where).toEqual(flat(c.ddpm_previous_timestep, f, where));
      expect(ts.map((t) => diffusersDdimPreviousTimestep(cfg, t, c.n)), where).toEqual(flat(c.ddim_prev_timestep, f, where));
    }
  });

  it('set_timesteps gives n strictly decreasing timesteps for every n in 1…T: leading ends at steps_offset, trailing starts at T − 1, linspace runs T − 1 → 0  [ddpm.diffusers.timestepsEveryN]', () => {
    const extraTrailing: string[] = [];
    for (const T of [1000, 20, 7]) {
      for (let n = 1; n <= T; n++) {
        for (const [spacing, off] of [['leading', 0], ['leading', 1], ['trailing', 0], ['linspace', 0]] as const) {
          const ts = diffusersTimesteps({ num_train_timesteps: T, timestep_spacing: spacing, steps_offset: off }, n);
          const where = `T=${T} ${spacing} offset ${off} n=${n}: ${ts.slice(0, 6).join(',')}…`;
          // diffusers' defect, reproduced: np.arange(T, 0, −T/n) can hold one entry too many (62 of the n at
          // T = 1000, first n = 61), which becomes a final timestep −1.
          if (spacing === 'trailing' && ts.length === n + 1) {
            expect(ts.pop(), where).toBe(-1);
            extraTrailing.push(`${T}:${n}`);
          }
          expect(ts.length, where).toBe(n);
          expect(ts.every((t, i) => Number.isInteger(t) && t >= off && t <= T - 1 + off && (i === 0 || t < ts[i - 1])), where).toBe(true);
          if (spacing === 'leading') expect(ts[n - 1], where).toBe(off);
          if (spacing === 'trailing') expect(ts[0], where).toBe(T - 1);
          if (spacing === 'linspace') expect([ts[0], ts[n - 1]], where).toEqual([n === 1 ? 0 : T - 1, 0]);
        }
      }
    }
    expect(extraTrailing.length).toBe(62);
    expect(extraTrailing[0]).toBe('1000:61');
    expect(() => diffusersTimesteps({ num_train_timesteps: 10 }, 11)).toThrow(/n must be an integer in 1…10/);
  });

  it("float32 buffers (β, α, ᾱ, DDIM's final ᾱ) of every beta schedule, with and without zero-SNR, equal diffusers' float32 tensors  [ddpm.diffusers.buffersEqUpstream]", () => {
    const f = 'diffusers_buffers.json';
    for (const [i, c] of load(f).cases.entries()) {
      const b = diffusersBuffers({ ...c.config, buffers: 'float32' });
      const tol = c.config.rescale_betas_zero_snr ? ZSNR_TOL : BUFFER_TOL;
      const where = `cases[${i}] ${c.scheduler} ${c.config.beta_schedule} zsnr=${c.config.rescale_betas_zero_snr}`;
      expect(b.betas, `${where} betas`).toBeCloseWithin(flat(c.betas, f, 'betas'), tol);
      expect(b.alphas, `${where} alphas`).toBeCloseWithin(flat(c.alphas, f, 'alphas'), tol);
      expect(b.alphasCumprod, `${where} alphas_cumprod`).toBeCloseWithin(flat(c.alphas_cumprod, f, 'alphas_cumprod'), tol);
      if (c.final_alpha_cumprod) expect(b.finalAlphaCumprod, where).toBeCloseWithin(flat(c.final_alpha_cumprod, f, 'final')[0], tol);
    }
  });

  it('zero-terminal-SNR rescaling makes ᾱ_T = 0 (β_T = 1) and keeps ᾱ_1, in both buffer conventions  [ddpm.diffusers.zeroSnrEndpoints]', () =>
    fc.assert(
      fc.property(
        // T ≥ 2 (T = 1 has no ᾱ_1 ≠ ᾱ_T to keep); β ≤ 0.05 keeps ᾱ_T ≥ 0.95^1000 > 0 before rescaling.
        fc.integer({ min: 2, max: 1000 }),
        fc.double({ min: 1e-5, max: 0.01, noNaN: true }),
        fc.double({ min: 0.01, max: 0.05, noNaN: true }),
        fc.constantFrom<DiffusersBetaSchedule[]>('linear', 'scaled_linear', 'sigmoid', 'squaredcos_cap_v2'),
        fc.constantFrom<('float64' | 'float32')[]>('float64', 'float32'),
        (T, lo, hi, sched, buffers) => {
          const cfg = { num_train_timesteps: T, beta_start: lo, beta_end: hi, beta_schedule: sched, buffers };
          const plain = diffusersBuffers(cfg);
          const z = diffusersBuffers({ ...cfg, rescale_betas_zero_snr: true });
          expect(z.alphasCumprod[T - 1]).toBe(0);
          expect(z.betas[T - 1]).toBe(1);
          const tol = buffers === 'float32' ? override({ rtol: 4e-7, atol: 0 }, 'ᾱ_1 through √, shift, scale and square in float32: a few ulps') : TOL.float64;
          expect(z.alphasCumprod[0]).toBeCloseWithin(plain.alphasCumprod[0], tol);
        },
      ),
    ));
});

describe('3.9 diffusers: variances, thresholding, and agreement with Ho and DDIM', () => {
  it("_get_variance of every variance type at t ∈ {0, 1, T/2, T − 1} and on a 10-step schedule equals diffusers' (float32 buffers), DDIM's with set_alpha_to_one either way  [ddpm.diffusers.varianceEqUpstream]", () => {
    const f = 'diffusers_variance.json';
    const rec = load(f);
    const tol = override({ rtol: 3e-5, atol: 0 }, "float32 buffers: 1–2 ulp linspace differences in ᾱ through 1 − ᾱ_t/ᾱ′ (cancellation: ×1/β ≤ 1e4 for β ≥ 1e−4; observed 1.2e−5)");
    for (const [i, c] of rec.ddpm.entries()) {
      const b = diffusersBuffers({ num_train_timesteps: c.T, beta_schedule: c.beta_schedule, buffers: 'float32' });
      const ts = c.n ? diffusersTimesteps(b.config, c.n) : undefined;
      const prev = diffusersPreviousTimestep(c.t, ts);
      expect(prev).toBe(c.previous_timestep);
      const pv = c.predicted_variance ? flat(c.predicted_variance, f, 'predicted_variance') : undefined;
      const v = diffusersDdpmVariance(b, c.t, prev, c.variance_type, pv);
      expect(v, `ddpm[${i}] ${c.beta_schedule} T=${c.T} n=${c.n} ${c.variance_type} t=${c.t}`).toBeCloseWithin(flat(c.variance, f, `ddpm[${i}].variance`), tol);
    }
    for (const [i, c] of rec.ddim.entries()) {
      const b = diffusersBuffers({ beta_start: c.beta_start, set_alpha_to_one: c.set_alpha_to_one, buffers: 'float32' });
      const r = Math.fround;
      const ab = b.alphasCumprod[c.t];
      const abPrev = c.prev_t >= 0 ? b.alphasCumprod[c.prev_t] : b.finalAlphaCumprod;
      // DDIM's variance is the σ² of diffusersDdimStep with η = 1: recover it from a step with ε = 0, x = 0, z = 1.
      const step = diffusersDdimStep(b, c.t, c.prev_t, [0], [0], 1, [1]).prevSample[0];
      const expected = flat(c.variance, f, `ddim[${i}].variance`)[0];
      expect(step * step, `ddim[${i}] set_alpha_to_one=${c.set_alpha_to_one} t=${c.t} prev=${c.prev_t}`).toBeCloseWithin(expected, override({ rtol: 3e-6, atol: 1e-12 }, 'σ² through √ and back in float32'));
      expect(r(r(r(1 - abPrev) / r(1 - ab)) * r(1 - r(ab / abPrev)))).toBeCloseWithin(expected, tol);
    }
  });

  it("at t = 0 diffusers clamps fixed_small at 1e−20 and uses β_1 for fixed_large, where improved-diffusion uses β̃_2  [ddpm.diffusers.varianceAtZero]", () => {
    const b = diffusersBuffers();
    expect(diffusersDdpmVariance(b, 0, -1, 'fixed_small')).toEqual([1e-20]);
    expect(diffusersDdpmVariance(b, 0, -1, 'fixed_large')[0]).toBeCloseWithin(b.betas[0], override({ rtol: 1e-12, atol: 0 }, 'β′ = 1 − ᾱ_1/1 = 1 − (1 − β_1): ulps of 1 relative to β_1 = 1e−4'));
    const s = makeSchedule(b.betas);
    const improved = fixedReverseVariance(s, 1, 'fixedLarge').variance;
    expect(improved).toBeCloseWithin(fixedReverseVariance(s, 2, 'betaTilde').variance, TOL.float64);
    expect(Math.abs(improved - b.betas[0])).toBeGreaterThan(1e-6);
    // fixed_small_log at t = 0 is the standard deviation 1e−10; improved's clipped log-variance would be log β̃_2.
    expect(diffusersDdpmVariance(b, 0, -1, 'fixed_small_log')[0]).toBeCloseWithin(1e-10, TOL.float64);
  });

  it('dynamic thresholding equals clipping to [−1, 1] when the quantile is ≤ 1, and always lands in [−1, 1]  [ddpm.diffusers.thresholdEqClipWhenSmall]', () =>
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 50 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.double({ min: 1, max: 5, noNaN: true }),
        (x, ratio, maxValue) => {
          const y = dynamicThreshold(x, ratio, maxValue);
          y.forEach((v) => expect(Math.abs(v)).toBeLessThanOrEqual(1));
          const clipped = x.map((v) => Math.min(1, Math.max(-1, v)));
          if (x.every((v) => Math.abs(v) <= 1)) expect(y).toEqual(clipped);
        },
      ),
    ));

  it("a DDPM step of the full chain (float64 buffers, no clipping, ε, fixed_small) equals Ho's ancestral step with σ² = β̃ at paper t = t_code + 1 ≥ 2  [ddpm.diffusers.ddpmStepEqAncestral]", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 60 }).chain((T) => fc.tuple(fc.constant(T), fc.integer({ min: 1, max: T - 1 }))),
        fc.constantFrom<'epsilon' | 'sample' | 'v_prediction'>('epsilon', 'sample', 'v_prediction'),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        ([T, t], prediction_type, x, out, z) => {
          const b = diffusersBuffers({ num_train_timesteps: T, beta_end: 0.2, clip_sample: false, prediction_type });
          const got = diffusersDdpmStep(b, t, t - 1, x, out, z);
          const kind = prediction_type === 'epsilon' ? 'eps' : prediction_type === 'sample' ? 'x0' : 'v';
          const want = ancestralStep(makeSchedule(b.betas), t + 1, x, { kind, value: out }, z, { variance: 'betaTilde' });
          expect(got.prevSample).toBeCloseWithin(want.sample, override({ rtol: 1e-9, atol: 1e-9 }, 'two float64 orders of the posterior mean through x̂_0, amplified by 1/√ᾱ (≤ 1e3 here)'));
        },
      ),
    ));

  it("a DDIM step (float64 buffers, set_alpha_to_one, no clipping, ε) equals the spec's ddimStep from t_code + 1 to prev + 1 for every η  [ddpm.diffusers.ddimStepEqSpec]", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 60 }).chain((T) => fc.tuple(fc.constant(T), fc.integer({ min: 1, max: T }))),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        ([T, n], eta, x, eps, z) => {
          const b = diffusersBuffers({ num_train_timesteps: T, beta_end: 0.2, clip_sample: false });
          const ts = diffusersTimesteps(b.config, n);
          const t = ts[0];
          const prev = diffusersDdimPreviousTimestep(b.config, t, n);
          const got = diffusersDdimStep(b, t, prev, x, eps, eta, z);
          const want = ddimStep(makeSchedule(b.betas), t + 1, Math.max(prev, -1) + 1, x, { kind: 'eps', value: eps }, eta, z);
          expect(got.prevSample).toBeCloseWithin(want.sample, override({ rtol: 1e-9, atol: 1e-9 }, 'σ through two float64 formulas (ratio vs expm1), amplified by 1/√ᾱ'));
        },
      ),
    ));
});

describe('3.9 diffusers: recorded loops and diffusers\' own scheduler tests', () => {
  it("every recorded DDPM and DDIM loop (ε, x₀, v; all variance types; thresholding; zero-SNR; every schedule and spacing) is reproduced step by step: prev_sample and pred_original_sample  [ddpm.diffusers.loopsEqUpstream]", () => {
    const f = 'diffusers_loops.json';
    const rec = load(f);
    const xT = decodeTensor(rec.x_T, f, 'x_T');
    const [B, C] = xT.shape;
    const D = xT.data.length / B;
    for (const [ci, c] of rec.cases.entries()) {
      const b = diffusersBuffers({ ...c.config, buffers: 'float32' });
      const ts = flat(c.timesteps, f, 'timesteps');
      const field = (k: string) => flat(c[k], f, `cases[${ci}].${k}`);
      const [out, noise, prev, x0] = [field('model_output'), field('noise'), field('prev_sample'), field('pred_original_sample')];
      const learned = out.length === ts.length * 2 * B * D;
      const schedule = c.num_inference_steps ? diffusersTimesteps(b.config, c.num_inference_steps) : undefined;
      expect(schedule ?? ts, `cases[${ci}] timesteps`).toEqual(schedule ? ts : ts);
      for (let s = 0; s < ts.length; s++) {
        for (let e = 0; e < B; e++) {
          const at = (arr: number[], per: number, o = 0) => arr.slice((s * B + e) * per + o, (s * B + e) * per + o + D);
          const x = s === 0 ? Array.from(xT.data.subarray(e * D, (e + 1) * D)) : at(prev, D).map((_, i) => prev[((s - 1) * B + e) * D + i]);
          if (!x.every(Number.isFinite)) {
            // fixed_large_log: diffusers' σ = √(log β′) is NaN (a defect, reproduced by the spec at step 0); NaN stays NaN.
            expect(at(prev, D).every(Number.isNaN), `cases[${ci}] step ${s}: NaN input, NaN output`).toBe(true);
            continue;
          }
          const mo = learned ? at(out, 2 * D) : at(out, D);
          const pv = learned ? at(out, 2 * D, D) : undefined;
          const t = ts[s];
          const r =
            c.scheduler === 'DDPMScheduler'
              ? diffusersDdpmStep(b, t, diffusersPreviousTimestep(t, schedule), x, mo, at(noise, D), pv)
              : diffusersDdimStep(b, t, diffusersDdimPreviousTimestep(b.config, t, c.num_inference_steps), x, mo, c.eta, at(noise, D), c.use_clipped_model_output);
          const where = `cases[${ci}] ${c.scheduler} "${c.name}" step ${s} (t = ${t}) example ${e} (C = ${C})`;
          const tol = loopTol(b.alphasCumprod[t], x, mo);
          expect(r.predOriginalSample, `${where} pred_original_sample`).toBeCloseWithin(at(x0, D), tol);
          expect(r.prevSample, `${where} prev_sample`).toBeCloseWithin(at(prev, D), tol);
        }
      }
    }
  });

  it('test_scheduler_ddpm.py test_full_loop_with_noise: 387.9466 (tol 1e−2) under float32 buffers; float64 buffers give 387.9673  [ddpm.diffusers.upstreamDdpmWithNoise]', () => {
    const f32 = ddpmWithNoise('float32');
    const f64 = ddpmWithNoise('float64');
    expect(Math.abs(sumAbs(f32) - 387.9466)).toBeLessThan(1e-2);
    expect(Math.abs(sumAbs(f32) / f32.length - 0.5051)).toBeLessThan(1e-3);
    expect(sumAbs(f32)).toBeCloseWithin(TESTS.results['ddpm.test_full_loop_with_noise'].sum_abs, override({ rtol: 1e-6, atol: 0 }, 'a sum of 768 float32 values'));
    // The exact maths misses diffusers' constant by 0.02: 1 − ᾱ at t = 1 cancels in float32.
    expect(sumAbs(f64)).toBeCloseWithin(387.9673, override({ rtol: 0, atol: 1e-4 }, 'the float64 result, rounded to 4 decimals as reported'));
    expect(Math.abs(sumAbs(f64) - 387.9466)).toBeGreaterThan(1e-2);
  });

  it.each([
    ['ddpm.test_full_loop_no_noise', 258.9606, 0.3372, {}],
    ['ddpm.test_full_loop_with_v_prediction', 202.0296, 0.2631, { prediction_type: 'v_prediction' }],
  ] as const)('test_scheduler_ddpm.py %s (1000 steps, their torch noise) gives diffusers\' sum %d and mean under float32 buffers  [ddpm.diffusers.upstreamDdpmFullLoops]', (name, sum, mean, cfg) => {
    const x = ddpmFullLoop({ ...cfg, buffers: 'float32' }, noiseOf('ddpm.test_full_loop_no_noise+with_v_prediction'));
    expect(Math.abs(sumAbs(x) - sum), `${name}: sum ${sumAbs(x)}`).toBeLessThan(1e-2);
    expect(Math.abs(sumAbs(x) / x.length - mean)).toBeLessThan(1e-3);
  });

  it.each([
    ['ddim.test_full_loop_no_noise', 172.0067, 0.223967, {}, 0],
    ['ddim.test_full_loop_with_v_prediction', 52.5302, 0.0684, { prediction_type: 'v_prediction' }, 0],
    ['ddim.test_full_loop_with_set_alpha_to_one', 149.8295, 0.1951, { set_alpha_to_one: true, beta_start: 0.01 }, 0],
    ['ddim.test_full_loop_with_no_set_alpha_to_one', 149.0784, 0.1941, { set_alpha_to_one: false, beta_start: 0.01 }, 0],
    ['ddim.test_full_loop_with_noise', 354.5418, 0.4616, {}, 8],
  ] as const)("test_scheduler_ddim.py %s gives diffusers' sum %d and mean in both buffer conventions  [ddpm.diffusers.upstreamDdimFullLoops]", (name, sum, mean, cfg, tStart) => {
    for (const buffers of ['float32', 'float64'] as const) {
      const x = ddimLoop({ ...cfg, buffers }, tStart);
      expect(Math.abs(sumAbs(x) - sum), `${name} (${buffers}): sum ${sumAbs(x)}`).toBeLessThan(1e-2);
      expect(Math.abs(sumAbs(x) / x.length - mean)).toBeLessThan(1e-3);
    }
  });
});
