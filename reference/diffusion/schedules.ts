/**
 * Noise schedules β_t, t ∈ {0, …, T−1} (0-based), computed in float64 on the host as the public code does
 * (numpy), and rounded to float32 once when they enter a tensor (see `buffers.ts`).
 *
 * - Ho et al.'s `get_beta_schedule(name, beta_start, beta_end, T)`: `quad`, `linear`, `warmup10`, `warmup50`,
 *   `const`, `jsd`.
 * - improved-diffusion's `get_named_beta_schedule(name, T)`: `linear` (endpoints scaled by 1000/T) and
 *   `cosine` (ᾱ(s) = cos²((s + 0.008)/1.008 · π/2), β clipped at `max_beta`).
 *
 * @module
 */
import { ReferenceArgumentError, finiteNumber, positiveInt } from './errors.ts';

/**
 * numpy's `linspace(start, stop, num)` with endpoint: `y_i = i·((stop − start)/(num − 1)) + start`, and the
 * last element set to `stop` exactly.
 */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const y = new Float64Array(num);
  if (num === 0) return y;
  if (num === 1) {
    y[0] = start;
    return y;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) y[i] = i * step + start;
  y[num - 1] = stop;
  return y;
}

/** The schedule names of Ho et al.'s `get_beta_schedule`. */
export const HO_SCHEDULES = ['quad', 'linear', 'warmup10', 'warmup50', 'const', 'jsd'] as const;
export type HoScheduleName = (typeof HO_SCHEDULES)[number];

/** The schedule names of improved-diffusion's `get_named_beta_schedule`. */
export const IMPROVED_SCHEDULES = ['linear', 'cosine'] as const;
export type ImprovedScheduleName = (typeof IMPROVED_SCHEDULES)[number];

function warmupBeta(betaStart: number, betaEnd: number, T: number, frac: number): Float64Array {
  const betas = new Float64Array(T).fill(betaEnd);
  const warmup = Math.trunc(T * frac);
  betas.set(linspace(betaStart, betaEnd, warmup).subarray(0, warmup), 0);
  return betas;
}

/**
 * Ho et al.'s `get_beta_schedule` (diffusion_utils_2.py), float64.
 *
 * - `quad`: linspace(√β_start, √β_end, T)²; `linear`: linspace(β_start, β_end, T);
 * - `warmup10`/`warmup50`: β_end everywhere except a linear ramp over the first ⌊T·0.1⌋ / ⌊T·0.5⌋ steps;
 * - `const`: β_end; `jsd`: 1/T, 1/(T−1), …, 1 (ends with β = 1, so ᾱ_{T−1} = 0).
 */
export function hoBetaSchedule(name: string, betaStart: number, betaEnd: number, T: number): Float64Array {
  const fn = 'hoBetaSchedule';
  positiveInt(fn, 'T', T);
  finiteNumber(fn, 'beta_start', betaStart);
  finiteNumber(fn, 'beta_end', betaEnd);
  switch (name) {
    case 'quad':
      return linspace(betaStart ** 0.5, betaEnd ** 0.5, T).map((b) => b * b);
    case 'linear':
      return linspace(betaStart, betaEnd, T);
    case 'warmup10':
      return warmupBeta(betaStart, betaEnd, T, 0.1);
    case 'warmup50':
      return warmupBeta(betaStart, betaEnd, T, 0.5);
    case 'const':
      return new Float64Array(T).fill(betaEnd);
    case 'jsd':
      return linspace(T, 1, T).map((v) => 1 / v);
    default:
      throw new ReferenceArgumentError(fn, 'name', `name must be one of ${HO_SCHEDULES.join(', ')}, got ${JSON.stringify(name)}`);
  }
}

/**
 * improved-diffusion's `betas_for_alpha_bar(T, ᾱ, max_beta)`: β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), max_beta).
 */
export function betasForAlphaBar(T: number, alphaBar: (s: number) => number, maxBeta = 0.999): Float64Array {
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const t1 = i / T;
    const t2 = (i + 1) / T;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** The cosine ᾱ(s) of improved DDPM: cos²((s + 0.008)/1.008 · π/2), s ∈ [0, 1]. */
export function cosineAlphaBar(s: number): number {
  const c = Math.cos(((s + 0.008) / 1.008) * Math.PI / 2);
  return c * c;
}

/**
 * improved-diffusion's `get_named_beta_schedule(name, T)`, float64. `linear` scales its endpoints by 1000/T
 * (linspace(1e−4·1000/T, 0.02·1000/T, T); for T < 20 the last β exceeds 1 and the buffers refuse it);
 * `cosine` clips β at `maxBeta` (default 0.999).
 */
export function improvedBetaSchedule(name: string, T: number, maxBeta = 0.999): Float64Array {
  const fn = 'improvedBetaSchedule';
  positiveInt(fn, 'T', T);
  finiteNumber(fn, 'max_beta', maxBeta, { min: 0, max: 1 });
  if (name === 'linear') {
    const scale = 1000 / T;
    return linspace(scale * 0.0001, scale * 0.02, T);
  }
  if (name === 'cosine') return betasForAlphaBar(T, cosineAlphaBar, maxBeta);
  throw new ReferenceArgumentError(fn, 'name', `name must be one of ${IMPROVED_SCHEDULES.join(', ')}, got ${JSON.stringify(name)}`);
}

/** Python's `round`: to the nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * improved-diffusion's `space_timesteps(num_timesteps, section_counts)`: which original timesteps a respaced
 * process keeps, sorted ascending.
 *
 * - `"ddimN"`: the integer stride i ≥ 1 for which `range(0, num_timesteps, i)` has exactly N elements;
 * - a comma list `"10,15,20"` or a number array: the process is split into equal sections (the first
 *   `num_timesteps mod k` sections one step longer), and section j keeps `counts[j]` steps evenly spaced with
 *   a fractional stride, rounded half to even as Python does.
 */
export function spaceTimesteps(numTimesteps: number, sectionCounts: string | readonly number[]): number[] {
  const fn = 'spaceTimesteps';
  positiveInt(fn, 'num_timesteps', numTimesteps);
  let counts: number[];
  if (typeof sectionCounts === 'string') {
    if (sectionCounts.startsWith('ddim')) {
      const desired = Number(sectionCounts.slice(4));
      if (!Number.isSafeInteger(desired) || desired < 1) {
        throw new ReferenceArgumentError(fn, 'section_counts', `section_counts "ddimN" needs a positive integer N, got ${JSON.stringify(sectionCounts)}`);
      }
      for (let i = 1; i < numTimesteps; i++) {
        if (Math.ceil(numTimesteps / i) === desired) {
          const out: number[] = [];
          for (let s = 0; s < numTimesteps; s += i) out.push(s);
          return out;
        }
      }
      throw new ReferenceArgumentError(
        fn,
        'section_counts',
        `section_counts ${JSON.stringify(sectionCounts)}: no integer stride gives exactly ${desired} of ${numTimesteps} timesteps`,
      );
    }
    counts = sectionCounts.split(',').map((s) => Number(s.trim()));
  } else {
    counts = [...sectionCounts];
  }
  if (counts.length === 0 || counts.some((c) => !Number.isSafeInteger(c) || c < 0)) {
    throw new ReferenceArgumentError(fn, 'section_counts', `section_counts must be non-negative integers, got ${JSON.stringify(sectionCounts)}`);
  }
  const sizePer = Math.floor(numTimesteps / counts.length);
  const extra = numTimesteps % counts.length;
  let start = 0;
  const all = new Set<number>();
  counts.forEach((count, i) => {
    const size = sizePer + (i < extra ? 1 : 0);
    if (size < count) {
      throw new ReferenceArgumentError(fn, 'section_counts', `section ${i} has ${size} steps and cannot be divided into ${count}`);
    }
    const stride = count <= 1 ? 1 : (size - 1) / (count - 1);
    let cur = 0;
    for (let k = 0; k < count; k++) {
      all.add(start + roundHalfEven(cur));
      cur += stride;
    }
    start += size;
  });
  return [...all].sort((a, b) => a - b);
}

/**
 * Respace a schedule to the kept timesteps (improved-diffusion's `SpacedDiffusion`):
 * β'_i = 1 − ᾱ_{map[i]}/ᾱ_{map[i−1]} (with ᾱ_{map[−1]} = 1), and `timestepMap[i]` the original timestep of
 * respaced index i (what the model is shown).
 */
export function respaceBetas(betas: ArrayLike<number>, useTimesteps: Iterable<number>): { betas: Float64Array; timestepMap: number[] } {
  const fn = 'respaceBetas';
  const keep = new Set(useTimesteps);
  for (const s of keep) {
    if (!Number.isInteger(s) || s < 0 || s >= betas.length) {
      throw new ReferenceArgumentError(fn, 'use_timesteps', `use_timesteps must be integers in {0, …, ${betas.length - 1}}, got ${s}`);
    }
  }
  if (keep.size === 0) throw new ReferenceArgumentError(fn, 'use_timesteps', 'use_timesteps must keep at least one timestep');
  const out: number[] = [];
  const map: number[] = [];
  let alphaBar = 1;
  let last = 1;
  for (let i = 0; i < betas.length; i++) {
    alphaBar *= 1 - betas[i];
    if (keep.has(i)) {
      out.push(1 - alphaBar / last);
      last = alphaBar;
      map.push(i);
    }
  }
  return { betas: Float64Array.from(out), timestepMap: map };
}

/** Why a schedule cannot be trained or sampled, with the configuration field to blame; see {@link degenerateSchedule}. */
export interface ScheduleProblem {
  field: 'beta_start' | 'beta_end' | 'num_diffusion_timesteps';
  message: string;
}

/**
 * The problem with a β schedule (0-based β_0 … β_{T−1}, as {@link hoBetaSchedule} returns it) that makes a
 * DDPM meaningless, or null:
 *
 * - β_t = 1 before the last step: ᾱ_t = 0 there, so x_t carries nothing of x_0 and every later step is pure
 *   noise (β = 1 only at the last step, as `jsd` has, is fine: it makes x_T exactly N(0, I));
 * - ᾱ never leaves 1 in float32 (every 1 − β_t rounds to 1): x_t = x_0 at every t, there is nothing to learn.
 */
export function degenerateSchedule(betas: ArrayLike<number>): ScheduleProblem | null {
  const T = betas.length;
  for (let t = 0; t < T - 1; t++) {
    if (betas[t] >= 1) {
      return { field: 'beta_end', message: `β reaches 1 at t = ${t + 1} of T = ${T} (1-based): ᾱ_t = 0 from there on, so x_t forgets x_0 before the last step and the model cannot learn; keep β < 1 before T` };
    }
  }
  let abar = 1;
  for (let t = 0; t < T; t++) abar = Math.fround(abar * Math.fround(1 - Math.fround(betas[t])));
  if (abar === 1) {
    return { field: 'beta_end', message: `ᾱ_T rounds to 1 in float32 (every 1 − β_t does): x_t = x_0 at every t, so there is no noise to learn; use larger β` };
  }
  return null;
}

/**
 * A warning for a schedule that works but defeats the sampler's start: when √ᾱ_T > 0.1, x_T keeps more than
 * a tenth of the data's scale, and sampling from x_T ~ N(0, I) starts from the wrong distribution. Null when fine.
 */
export function scheduleWarning(betas: ArrayLike<number>): string | null {
  let abar = 1;
  for (let t = 0; t < betas.length; t++) abar *= 1 - betas[t];
  return abar > 0.01 ? `ᾱ_T = ${abar.toPrecision(3)}: x_T keeps √ᾱ_T = ${Math.sqrt(abar).toPrecision(3)} of the data, so sampling from N(0, I) starts from the wrong distribution; increase β or T` : null;
}

/**
 * {@link degenerateSchedule} of Ho et al.'s schedule `name(beta_start, beta_end, T)`; null also when the
 * arguments themselves are out of range (a schema reports those, naming their fields; zod runs an object's
 * refinements even after a field failed its bounds, and a T of 10¹⁵ must not allocate its schedule).
 */
export function degenerateHoSchedule(name: string, betaStart: number, betaEnd: number, T: number): ScheduleProblem | null {
  const inRange = (b: number): boolean => typeof b === 'number' && b > 0 && b <= 1;
  if (!(HO_SCHEDULES as readonly string[]).includes(name) || !inRange(betaStart) || !inRange(betaEnd) || !Number.isInteger(T) || T < 2 || T > 1_000_000) return null;
  return degenerateSchedule(hoBetaSchedule(name, betaStart, betaEnd, T));
}
