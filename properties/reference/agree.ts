/**
 * Shared by the reference-vs-spec properties (4.x): the float32 agreement tolerance measured on the size of the
 * terms, the comparison that reports the worst element, and the arbitraries (schedules, shapes, timesteps,
 * seeded data).
 */
import fc from 'fast-check';
import { fmt, unravel } from '../../src/numeric/close.ts';
import { TOL, override, type Tolerance } from '../../src/numeric/tolerance.ts';
import { Rng } from '../../src/numeric/rng.ts';
import type { Tensor } from '../../src/conformance/ops.ts';
import { cosineBetas, improvedLinearBetas, quadBetas } from '../../spec/ddpm/schedule.ts';

/**
 * The float32 table applied to the terms: |ref − spec| ≤ atol + rtol·scale, with scale the sum of the
 * magnitudes of the terms that make the value (≥ |value|). A float32 evaluation of a·x + b·y with a, b rounded
 * from float64 errs by a few units of 2⁻²⁴ of |a·x| + |b·y|, which for x̂₀ = √(1/ᾱ)·x_t − √(1/ᾱ−1)·ε at
 * √(1/ᾱ) = 400 is 400 times the result; measuring against the result would need a tolerance tuned per t.
 */
export const AGREE: Tolerance = override(
  { rtol: TOL.float32.rtol, atol: TOL.float32.atol },
  `${TOL.float32.reason}, measured on the magnitude of the terms that make each value (a·x − b·y cancels)`,
);

/** Schedule agreement: both sides compute in float64. */
export const AGREE64: Tolerance = override({ rtol: 1e-11, atol: 1e-14 }, 'both compute the schedule in float64 (different expression order: a few ulps of cos/log/sqrt and of the cumulative product)');

/** Compare two tensors element-wise against a per-element scale; throws a readable error naming the worst element. */
export function expectAgree(what: string, actual: Tensor, expected: Tensor, scale: ArrayLike<number> | number, tol: Tolerance = AGREE): void {
  if (actual.shape.join() !== expected.shape.join()) throw new Error(`${what}: shape [${actual.shape}] vs spec [${expected.shape}]`);
  let worst = -1;
  let worstRatio = -1;
  let failures = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i];
    const e = expected.data[i];
    const s = Math.max(Math.abs(e), typeof scale === 'number' ? scale : scale[i]);
    const bound = tol.atol + tol.rtol * s;
    const d = Math.abs(a - e);
    const bothSame = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
    const ratio = bothSame ? 0 : Number.isFinite(d) ? d / bound : Infinity;
    if (ratio > 1) failures++;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (failures > 0) {
    const s = Math.max(Math.abs(expected.data[worst]), typeof scale === 'number' ? scale : scale[worst]);
    throw new Error(
      `${what}: reference and spec disagree at ${failures} of ${expected.data.length} elements; worst at [${unravel(worst, expected.shape)}]: ` +
        `reference ${fmt(actual.data[worst])}, spec ${fmt(expected.data[worst])}, |Δ| ${fmt(Math.abs(actual.data[worst] - expected.data[worst]))} > ` +
        `bound ${fmt(tol.atol + tol.rtol * s)} (atol ${fmt(tol.atol)} + rtol ${fmt(tol.rtol)}·scale ${fmt(s)})\ntolerance: ${tol.reason}`,
    );
  }
}

export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
export const tensor = (shape: number[], data: ArrayLike<number>): Tensor => ({ shape: [...shape], data: Float64Array.from(data) });

/** Seeded normals times a factor. */
export function normals(seed: number, shape: number[], factor = 1): Tensor {
  const r = new Rng(seed);
  return tensor(shape, r.normals(size(shape)).map((v) => v * factor));
}

/**
 * Schedules: the golden data's (improved linear T = 1000, √(1/ᾱ) up to 157; cosine T = 20, up to 406), a quad one,
 * and random betas. Random β ∈ [1e−4, 0.3] (0.3: beyond any published schedule's largest non-final β) with
 * T ∈ [2, 40] (short, so that random schedules reach small ᾱ: 0.7⁴⁰ ≈ 6e−7, √(1/ᾱ) up to 1300).
 */
export const betasArb: fc.Arbitrary<{ name: string; betas: Tensor }> = fc.oneof(
  fc.constantFrom(
    { name: 'improved linear T=1000', betas: tensor([1000], improvedLinearBetas(1000)) },
    { name: 'cosine T=20', betas: tensor([20], cosineBetas(20)) },
    { name: 'quad T=50', betas: tensor([50], quadBetas(50, 1e-4, 0.05)) },
  ),
  fc
    .array(fc.double({ min: 1e-4, max: 0.3, noNaN: true }), { minLength: 2, maxLength: 40 })
    .map((b) => ({ name: `random β (T=${b.length})`, betas: tensor([b.length], b) })),
);

/**
 * An NCHW shape: batch 1–3 (per-example timesteps), channels 1–3, spatial 1–3 (small: every element is compared,
 * and the maths is element-wise apart from the model's channel mixing).
 */
export const shapeArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }));

/** One timestep per example, with 0 and T−1 (the special cases: clipped log-variance, largest √(1/ᾱ)) often. */
export function timestepsArb(T: number, B: number): fc.Arbitrary<number[]> {
  return fc.array(fc.oneof(fc.constant(0), fc.constant(T - 1), fc.integer({ min: 0, max: T - 1 })), { minLength: B, maxLength: B });
}

/** A schedule, a shape, timesteps and a data seed. */
export const diffusionCaseArb = fc.tuple(betasArb, shapeArb).chain(([s, shape]) =>
  fc.record({
    name: fc.constant(s.name),
    betas: fc.constant(s.betas),
    shape: fc.constant([...shape] as number[]),
    t: timestepsArb(s.betas.data.length, shape[0]),
    seed: fc.integer(),
  }),
);

/** Per-element value of a per-example coefficient (buffer at each example's t), for an NCHW shape. */
export function perExample(buf: Float64Array, t: number[], shape: number[]): Float64Array {
  const n = size(shape) / shape[0];
  return Float64Array.from({ length: size(shape) }, (_, i) => buf[t[Math.floor(i / n)]]);
}

/** |actual − expected| ≤ bound_i element-wise (a bound derived per element in the test, with its reason). */
export function expectWithin(what: string, actual: Tensor, expected: Tensor, bound: ArrayLike<number>, reason: string, mask?: (i: number) => boolean): void {
  if (actual.shape.join() !== expected.shape.join()) throw new Error(`${what}: shape [${actual.shape}] vs expected [${expected.shape}]`);
  let worst = -1;
  let worstRatio = -1;
  let failures = 0;
  let compared = 0;
  for (let i = 0; i < expected.data.length; i++) {
    if (mask && !mask(i)) continue;
    compared++;
    const d = Math.abs(actual.data[i] - expected.data[i]);
    const ratio = Number.isFinite(d) ? d / bound[i] : Infinity;
    if (ratio > 1) failures++;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (failures > 0) {
    throw new Error(
      `${what}: ${failures} of ${compared} elements outside their bound; worst at [${unravel(worst, expected.shape)}]: actual ${fmt(actual.data[worst])}, ` +
        `expected ${fmt(expected.data[worst])}, |Δ| ${fmt(Math.abs(actual.data[worst] - expected.data[worst]))} > bound ${fmt(bound[worst])}\nbound: ${reason}`,
    );
  }
}

/** The TinyModel in float64 (its definition in golden/upstream/README.md), NCHW: out, and Σ|terms| per element. */
export function tinyModel64(W: Tensor, bias: Tensor, tw: Tensor, x: Tensor, tModel: number[]): { out: Tensor; mag: Float64Array } {
  const [B, C, ...rest] = x.shape;
  const O = W.shape[0];
  const HW = size(rest);
  const out = new Float64Array(B * O * HW);
  const mag = new Float64Array(B * O * HW);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++)
      for (let p = 0; p < HW; p++) {
        let s = 0;
        let m = 0;
        for (let i = 0; i < C; i++) {
          const v = W.data[o * C + i] * x.data[(b * C + i) * HW + p];
          s += v;
          m += Math.abs(v);
        }
        const tt = (tw.data[o] * tModel[b]) / 1000;
        out[(b * O + o) * HW + p] = s + bias.data[o] + tt;
        mag[(b * O + o) * HW + p] = m + Math.abs(bias.data[o]) + Math.abs(tt);
      }
  return { out: tensor([B, O, ...rest], out), mag };
}
