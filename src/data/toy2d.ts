/**
 * Two-dimensional toy distributions for small diffusion models, each drawn from a seeded stream
 * (randomness is an argument). Scales follow the usual toy-density benchmarks (FFJORD's): every set lies
 * roughly in [−4, 4]².
 *
 * - `moons`: two interleaving half circles, (cos θ, sin θ) and (1 − cos θ, ½ − sin θ) with θ ~ U[0, π],
 *   each with probability ½, plus N(0, 0.05²) noise, shifted by (−½, −¼) and scaled by 2;
 * - `swissroll`: t = 1.5π(1 + 2u), u ~ U[0, 1), the point (t cos t, t sin t) plus N(0, 1) noise, divided by 5;
 * - `8gaussians`: an equal mixture of N(c_k, 0.5²I) with c_k = 4(cos kπ/4, sin kπ/4), k = 0…7, divided by √2
 *   (component sd 0.354, centres on the circle of radius 2.83).
 *
 * @module
 */
import type { Rng } from '../numeric/rng.ts';

export const TOY_DATASETS = ['moons', 'swissroll', '8gaussians'] as const;
export type ToyDataset = (typeof TOY_DATASETS)[number];

function check(fn: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${fn}: n must be a non-negative integer, got ${n}`);
}

/** n points of two moons, row-major [n, 2]. */
export function moons(rng: Rng, n: number, noise = 0.05): Float32Array {
  check('moons', n);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const theta = Math.PI * rng.uniform();
    const upper = rng.uniform() < 0.5;
    const x = upper ? Math.cos(theta) : 1 - Math.cos(theta);
    const y = upper ? Math.sin(theta) : 0.5 - Math.sin(theta);
    out[2 * i] = 2 * (x + noise * rng.normal() - 0.5);
    out[2 * i + 1] = 2 * (y + noise * rng.normal() - 0.25);
  }
  return out;
}

/** n points of the 2-D Swiss roll, row-major [n, 2]. */
export function swissroll(rng: Rng, n: number, noise = 1.0): Float32Array {
  check('swissroll', n);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = 1.5 * Math.PI * (1 + 2 * rng.uniform());
    out[2 * i] = (t * Math.cos(t) + noise * rng.normal()) / 5;
    out[2 * i + 1] = (t * Math.sin(t) + noise * rng.normal()) / 5;
  }
  return out;
}

/** n points of the mixture of 8 Gaussians on a circle, row-major [n, 2]. */
export function eightGaussians(rng: Rng, n: number, sd = 0.5): Float32Array {
  check('eightGaussians', n);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(8);
    const a = (k * Math.PI) / 4;
    out[2 * i] = (4 * Math.cos(a) + sd * rng.normal()) / Math.SQRT2;
    out[2 * i + 1] = (4 * Math.sin(a) + sd * rng.normal()) / Math.SQRT2;
  }
  return out;
}

/** n points of a named toy set. */
export function sampleToy(name: ToyDataset, rng: Rng, n: number): Float32Array {
  switch (name) {
    case 'moons':
      return moons(rng, n);
    case 'swissroll':
      return swissroll(rng, n);
    case '8gaussians':
      return eightGaussians(rng, n);
    default:
      throw new RangeError(`sampleToy: unknown toy dataset ${JSON.stringify(name)}; expected one of ${TOY_DATASETS.join(', ')}`);
  }
}
