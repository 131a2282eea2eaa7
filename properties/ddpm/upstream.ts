/**
 * The upstream code's own numbers, read from `golden/upstream/` (each file names its producer: repository,
 * commit, function, arguments). The spec's properties use them as an independent oracle: agreement with numbers
 * the authors' code produced, rather than with a second copy of the spec's formula.
 */
import { readFileSync } from 'node:fs';

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
