/**
 * Readers for the files recorded from diffusers' own schedulers (`diffusers_*.json`, see golden/README.md):
 * `set_timesteps`, `_get_variance`, the buffers of every beta schedule, and DDPM/DDIM loops replayed step by step
 * from the recorded inputs (each step starts from the recorded sample, so errors do not compound). The
 * configurations are read from the files and sent in diffusers' option names, with `buffers: 'float32'` (diffusers
 * holds its buffers in float32).
 *
 * @module
 */
import { override } from '../../numeric/tolerance.ts';
import { has, index0, intsOf, listField, numberField, objectField, size, stringField, tensorField } from '../tensors.ts';
import type { Check, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';
import type { DiffusersArgs } from '../../conformance/vocabulary.ts';
import { FormatError } from '../../formats/errors.ts';
import { guarded } from './common.ts';

const EXACT = override({ rtol: 0, atol: 0 }, 'integer timesteps: exact');
/** Buffers: torch.linspace's vectorised kernel rounds ≤ 1 ulp from its per-element formula (≤ 2 ulp in ᾱ, after √ and ²). */
const BUFFERS = override({ rtol: 5e-7, atol: 0 }, "float32 buffers: torch.linspace's vectorised kernel is ≤ 1 ulp from its per-element formula (≤ 4 ulp after squaring, tfjs sigmoid)");
const BUFFERS_ZSNR = override({ rtol: 2e-4, atol: 1e-12 }, "zero-SNR: β' = 1 − ᾱ'_t/ᾱ'_{t−1} amplifies a 1-ulp difference in ᾱ by 1/β");
const VARIANCE = override({ rtol: 3e-5, atol: 1e-25 }, 'float32 buffers: 1–2 ulp linspace differences in ᾱ through 1 − ᾱ_t/ᾱ′ (×1/β ≤ 1e4)');
/**
 * A step against torch's float32: x̂₀ = (x − √(1−ᾱ)ε)/√ᾱ amplifies float32 rounding of the inputs by up to 1/√ᾱ_t
 * (≈ 850 at t = 900 with β from 0.01); 2 ulps (2.4e−7) of inputs up to 4 in size, times that.
 */
const STEP = override({ rtol: 1e-6, atol: 1e-3 }, "float64/tfjs samples vs torch's float32: 2 ulps (2.4e−7) of the inputs' size, amplified by 1/√ᾱ_t + 1/√(1−ᾱ_t) (the atol per step below)");

/**
 * The atol of a step: 2 float32 ulps of the inputs' size times the amplification 1/√ᾱ_t + 1/√(1 − ᾱ_t) of
 * x̂₀ = (x − √(1−ᾱ)ε)/√ᾱ and ε̂ = (x − √ᾱ x̂₀)/√(1−ᾱ); ᾱ_t from the implementation's own buffers (themselves checked
 * against `diffusers_buffers.json`).
 */
function stepAtol(cfg: DiffusersArgs, t: number, n: number, ...inputs: Tensor[]): Check['elementAtol'] {
  return async (impl) => {
    const b = await impl.diffusers_buffers!(cfg);
    const ab = b.alphas_cumprod.data[t];
    const amp = (ab > 0 ? 1 / Math.sqrt(ab) : 1) + 1 / Math.sqrt(1 - ab);
    let m = 0;
    for (const x of inputs) for (const v of x.data) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
    const atol = 2.4e-7 * amp * (1 + m);
    return { values: new Float64Array(n).fill(atol), formula: `2.4e-7·(1 + max|input| = ${(1 + m).toFixed(2)})·(1/√ᾱ + 1/√(1−ᾱ) = ${amp.toExponential(2)}) = ${atol.toExponential(2)}` };
  };
}

/** A scheduler config as the file records it (diffusers' names), without `trained_betas: null`. */
function configOf(root: unknown, path: string, file: string): DiffusersArgs {
  const c = { ...objectField(root, path, file) } as Record<string, unknown>;
  if (c.trained_betas === null) delete c.trained_betas;
  return { ...(c as DiffusersArgs), buffers: 'float32' };
}

const check = (quantity: string, expected: Tensor, tol = STEP): Check => ({ quantity, expected, tol });

/** `diffusers_set_timesteps.json`. */
export function readDiffusersSetTimesteps(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'cases', file).forEach((_, i) => guarded(skipped, file, `cases[${i}]`, () => {
    const p = `cases.${i}`;
    const a: DiffusersArgs & { num_inference_steps: number } = {
      num_train_timesteps: numberField(root, `${p}.T`, file, { integer: true, min: 1 }),
      timestep_spacing: stringField(root, `${p}.timestep_spacing`, file) as DiffusersArgs['timestep_spacing'],
      steps_offset: numberField(root, `${p}.steps_offset`, file, { integer: true, min: 0 }),
      num_inference_steps: numberField(root, `${p}.n`, file, { integer: true, min: 1 }),
    };
    const id = `cases[${i}] T=${a.num_train_timesteps} ${a.timestep_spacing} offset ${a.steps_offset} n=${a.num_inference_steps}`;
    cases.push({ file, id, op: 'diffusers_set_timesteps', checks: [check('timesteps', tensorField(root, `${p}.timesteps`, file), EXACT)], run: async (impl) => impl.diffusers_set_timesteps!(a) });
    skipped.push({
      file,
      case: id,
      quantity: 'ddpm_previous_timestep, ddim_prev_timestep, ddim_equal_to_ddpm',
      kind: 'not applicable',
      reason: 'derived from the timesteps (DDPM: the next entry, −1 after the last; DDIM: t − T//n): checked inside the step cases and by [ddpm.diffusers.timestepsEqUpstream]',
    });
  }));
  return { cases, skipped };
}

/** `diffusers_variance.json`: DDPM `_get_variance`; DDIM's is the σ² inside its step (replayed by the loop cases). */
export function readDiffusersVariance(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'ddpm', file).forEach((_, i) => guarded(skipped, file, `ddpm[${i}]`, () => {
    const p = `ddpm.${i}`;
    const rec = objectField(root, p, file);
    const n = rec.n === null ? null : numberField(root, `${p}.n`, file, { integer: true, min: 1 });
    const a: DiffusersArgs & { t: number } = {
      num_train_timesteps: numberField(root, `${p}.T`, file, { integer: true, min: 1 }),
      beta_schedule: stringField(root, `${p}.beta_schedule`, file) as DiffusersArgs['beta_schedule'],
      variance_type: stringField(root, `${p}.variance_type`, file) as DiffusersArgs['variance_type'],
      num_inference_steps: n,
      t: numberField(root, `${p}.t`, file, { integer: true, min: 0 }),
      buffers: 'float32',
    };
    const pv = rec.predicted_variance === null ? { shape: [1], data: Float64Array.of(0) } : tensorField(root, `${p}.predicted_variance`, file);
    const id = `ddpm[${i}] ${a.beta_schedule} T=${a.num_train_timesteps} n=${n ?? 'full'} ${a.variance_type} t=${a.t}`;
    cases.push({ file, id, op: 'diffusers_ddpm_variance', checks: [check('variance', tensorField(root, `${p}.variance`, file), VARIANCE)], run: async (impl) => impl.diffusers_ddpm_variance!(a, pv) });
  }));
  if (has(root, 'ddim')) {
    skipped.push({ file, case: 'ddim[*]', kind: 'not applicable', reason: "DDIM's _get_variance is the σ²/η² inside DDIMScheduler.step (replayed by diffusers_loops.json): checked by [ddpm.diffusers.varianceEqUpstream]" });
  }
  return { cases, skipped };
}

/** `diffusers_buffers.json`. */
export function readDiffusersBuffers(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'cases', file).forEach((_, i) => guarded(skipped, file, `cases[${i}]`, () => {
    const p = `cases.${i}`;
    const a = configOf(root, `${p}.config`, file);
    const tol = a.rescale_betas_zero_snr ? BUFFERS_ZSNR : BUFFERS;
    const checks = ['betas', 'alphas', 'alphas_cumprod'].map((q) => check(q, tensorField(root, `${p}.${q}`, file), tol));
    if (has(objectField(root, p, file), 'final_alpha_cumprod')) checks.push(check('final_alpha_cumprod', tensorField(root, `${p}.final_alpha_cumprod`, file), tol));
    const id = `cases[${i}] ${stringField(root, `${p}.scheduler`, file)} ${a.beta_schedule}${a.rescale_betas_zero_snr ? ' zero-SNR' : ''}`;
    cases.push({ file, id, op: 'diffusers_buffers', checks, run: async (impl) => impl.diffusers_buffers!(a) });
  }));
  return { cases, skipped };
}

/** Step k of a stacked [S, …] tensor. */
const at = (t: Tensor, k: number, file: string, field: string): Tensor => index0(t, k, file, field);

/** `diffusers_loops.json`: every step of every loop, from the recorded input sample. */
export function readDiffusersLoops(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  const xT = tensorField(root, 'x_T', file);
  listField(root, 'cases', file).forEach((_, i) => guarded(skipped, file, `cases[${i}]`, () => {
    const p = `cases.${i}`;
    const rec = objectField(root, p, file);
    const sched = stringField(root, `${p}.scheduler`, file);
    const name = stringField(root, `${p}.name`, file);
    const cfg = configOf(root, `${p}.config`, file);
    const n = rec.num_inference_steps === null ? null : numberField(root, `${p}.num_inference_steps`, file, { integer: true, min: 1 });
    const ts = intsOf(tensorField(root, `${p}.timesteps`, file), file, `${p}.timesteps`);
    const [out, noise, prev, x0] = ['model_output', 'noise', 'prev_sample', 'pred_original_sample'].map((q) => tensorField(root, `${p}.${q}`, file));
    ts.forEach((t, k) => {
      const id = `cases[${i}] ${sched} "${name}" step ${k} (t = ${t})`;
      const sample = k === 0 ? xT : at(prev, k - 1, file, `${p}.prev_sample`);
      if (!sample.data.every(Number.isFinite)) {
        skipped.push({ file, case: id, kind: 'not applicable', reason: "the recorded input is NaN (diffusers' fixed_large_log draws with σ = √(log β′), NaN from the first step, which is compared)" });
        return;
      }
      const mo = at(out, k, file, `${p}.model_output`);
      const z = at(noise, k, file, `${p}.noise`);
      const elementAtol = stepAtol(cfg, t, size(sample.shape), sample, mo);
      const checks: Check[] = [
        { ...check('prev_sample', at(prev, k, file, `${p}.prev_sample`)), elementAtol },
        { ...check('pred_original_sample', at(x0, k, file, `${p}.pred_original_sample`)), elementAtol },
      ];
      if (size(mo.shape) !== size(sample.shape) && size(mo.shape) !== 2 * size(sample.shape)) {
        throw new FormatError(file, `${p}.model_output`, `step ${k} has ${size(mo.shape)} values for a sample of ${size(sample.shape)} (expected as many, or twice as many for a learned variance)`);
      }
      if (sched === 'DDPMScheduler') {
        const a = { ...cfg, num_inference_steps: n, t };
        cases.push({ file, id, op: 'diffusers_ddpm_step', checks, run: async (impl) => impl.diffusers_ddpm_step!(a, mo, sample, z) });
      } else {
        const a = {
          ...cfg,
          num_inference_steps: numberField(root, `${p}.num_inference_steps`, file, { integer: true, min: 1 }),
          t,
          eta: numberField(root, `${p}.eta`, file),
          use_clipped_model_output: rec.use_clipped_model_output === true,
        };
        cases.push({ file, id, op: 'diffusers_ddim_step', checks, run: async (impl) => impl.diffusers_ddim_step!(a, mo, sample, z) });
      }
    });
  }));
  return { cases, skipped };
}
