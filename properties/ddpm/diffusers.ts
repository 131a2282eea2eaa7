/**
 * Shared by the diffusers properties of the spec and the reference: the recorded files, diffusers' test
 * fixtures (`dummy_sample_deter`, `dummy_noise_deter`, `dummy_model`) and the tolerances for comparing with them.
 */
import { readFileSync } from 'node:fs';
import type { DiffusersBuffers, DiffusersConfigInput } from '../../spec/ddpm/index.ts';
import { decodeTensor } from '../../src/formats/jsonTensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { override } from '../../src/numeric/tolerance.ts';

export const DIR = 'golden/upstream';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;
export const load = (f: string): Json => JSON.parse(readFileSync(`${DIR}/${f}`, 'utf8'));
export const flat = (v: Json, file: string, field: string): number[] => Array.from(decodeTensor(v, file, field).data);

/** torch.linspace's vectorised CPU kernel differs from its per-element formula by ≤ 1 ulp (and with the CPU's vector width). */
export const BUFFER_TOL = override({ rtol: 4e-7, atol: 0 }, 'float32 buffers: torch.linspace rounds ≤ 1 ulp away from its per-element formula (2 ulp after squaring or in ᾱ)');
/** Zero-SNR rescaling divides neighbouring ᾱ that differ by ~β: a 1-ulp difference in ᾱ becomes up to ~1e−4 in β. */
export const ZSNR_TOL = override({ rtol: 2e-4, atol: 1e-12 }, "zero-SNR: β' = 1 − ᾱ'_t/ᾱ'_{t−1} amplifies the 1-ulp linspace difference by 1/β");
/**
 * A step in float64 samples against torch's float32 samples: x̂_0 = (x − √(1−ᾱ)ε)/√ᾱ and ε̂ = (x − √ᾱ x̂_0)/√(1−ᾱ)
 * amplify float32 rounding of their inputs by 1/√ᾱ_t and 1/√(1−ᾱ_t); 2 float32 ulps (2.4e−7) of the inputs' size.
 */
export function loopTol(alphaBar: number, ...inputs: number[][]) {
  const amp = (alphaBar > 0 ? 1 / Math.sqrt(alphaBar) : 1) + 1 / Math.sqrt(1 - alphaBar);
  const size = 1 + Math.max(...inputs.flat().map(Math.abs));
  return override({ rtol: 1e-6, atol: 2.4e-7 * amp * size }, `float64 samples vs torch's float32: 2 ulps of |input| ≤ ${size.toFixed(2)}, amplified by 1/√ᾱ + 1/√(1−ᾱ) = ${amp.toExponential(2)}`);
}

const fixtureIndex = (b: number, c: number, h: number, w: number): number => ((c * 8 + h) * 8 + w) * 4 + b;
/** diffusers' `dummy_sample_deter` (flip: `dummy_noise_deter`), [4,3,8,8] row-major, float32 as torch divides. */
export function fixture(flip = false): number[] {
  const out: number[] = [];
  for (let b = 0; b < 4; b++) for (let c = 0; c < 3; c++) for (let h = 0; h < 8; h++) for (let w = 0; w < 8; w++) {
    const k = fixtureIndex(b, c, h, w);
    out.push(Math.fround((flip ? 767 - k : k) / 768));
  }
  return out;
}
/** diffusers' `dummy_model`: sample·t/(t+1). */
export const dummyModel = (x: readonly number[], t: number): number[] => x.map((v) => (v * t) / (t + 1));
export const sumAbs = (x: readonly number[]): number => x.reduce((a, v) => a + Math.abs(v), 0);

export function addNoise(b: DiffusersBuffers, x: readonly number[], noise: readonly number[], t: number): number[] {
  const r = b.config.buffers === 'float32' ? Math.fround : (v: number) => v;
  const [sa, sb] = [r(Math.sqrt(b.alphasCumprod[t])), r(Math.sqrt(r(1 - b.alphasCumprod[t])))];
  return x.map((v, i) => sa * v + sb * noise[i]);
}

export const TESTS = load('diffusers_tests.json');
export const NOISE = readSafetensors(`${DIR}/diffusers_tests_noise.safetensors`);
export const noiseOf = (name: string): Float32Array => NOISE.tensors.get(name)!.data as Float32Array;
export const BASE: DiffusersConfigInput = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', clip_sample: true };

