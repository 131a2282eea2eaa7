/**
 * The upstream code's own numbers, read from `golden/upstream/` (each file names its producer: repository,
 * commit, function, arguments). The spec's properties use them as an independent oracle: agreement with numbers
 * the authors' code produced, rather than with a second copy of the spec's formula.
 */
import { readFileSync } from 'node:fs';
import { namedSchedule, type Schedule } from '../../spec/ddpm/index.ts';
import { override, type Tolerance } from '../../src/numeric/tolerance.ts';

/** A float64 array as stored in a golden file. */
export type GoldenArray = { dtype: string; shape: number[]; data: number[] };

/** The `outputs` of a golden file of `golden/upstream/`. */
export function goldenOutputs(file: string): Record<string, unknown> {
  return (JSON.parse(readFileSync(new URL(`../../golden/upstream/${file}`, import.meta.url), 'utf8')) as { outputs: Record<string, unknown> }).outputs;
}

/** improved-diffusion's GaussianDiffusion buffers (0-based: index t − 1 holds paper step t), by schedule. */
export const IMPROVED_BUFFERS = ['linear_T100', 'linear_T1000', 'cosine_T20', 'cosine_T1000'] as const;

export function improvedBuffers(key: (typeof IMPROVED_BUFFERS)[number]): Record<string, GoldenArray> {
  return goldenOutputs(`id_buffers_${key}.json`) as Record<string, GoldenArray>;
}

/**
 * Each of improved-diffusion's buffer files with the spec's schedule of the same name, the paper steps 1…T, and
 * the tolerance of comparing the spec's float64 values with NumPy's.
 */
export function improvedCases(): { key: string; g: Record<string, GoldenArray>; s: Schedule; ts: number[]; tol: Tolerance }[] {
  return IMPROVED_BUFFERS.map((key) => {
    const g = improvedBuffers(key);
    const T = g.betas.data.length;
    const s = namedSchedule(key.startsWith('cosine') ? { kind: 'cosine', T } : { kind: 'improvedLinear', T });
    const ts = Array.from({ length: T }, (_, i) => i + 1);
    const tol = override({ rtol: 4 * T * Number.EPSILON, atol: 4 * Number.EPSILON }, 'NumPy cumprod and 1 − ᾱ vs the spec’s log-sums and expm1: t roundings, and an absolute ulp where 1 − ᾱ cancels');
    return { key, g, s, ts, tol };
  });
}
