import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { installGradients, SPLIT_LAST_AXIS, splitLastAxis, SUM_LEADING_AXES, sumLeadingAxes, sumToShape } from '../../reference/grad/index.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';

installGradients();

// Values are divided by their channel's Σ|δ| before comparing. The kernel sums in float64 (error ≤ n·ε₆₄·Σ|δ| ≈ 4e-12
// for n ≤ 32768 rows) and rounds once to float32 (≤ half an ulp, 2⁻²⁴ relative).
const KERNEL_SUM = override({ rtol: 2 ** -23, atol: 1e-11 }, 'float64 accumulation rounded once to float32, scaled by Σ|δ|: one float32 ulp relative plus n·ε₆₄');
// tfjs's float32 sums (the fallback), same scaling: n·ε₃₂ worst case for n ≤ 1296 rows, √n·ε₃₂ typical at 32768.
const FALLBACK_SUM = override({ rtol: 0, atol: 1e-4 }, 'tfjs float32 sums over up to 32768 rows, scaled by Σ|δ|: n·ε₃₂ worst case for the generated sizes');

/** Last-axis sizes: the UNet's (32, 96, 128: the kernel copies segments of ≥ 128 with one memcpy), the degenerate 1, an odd 3, small random ones. */
const channel = fc.oneof(fc.constantFrom(1, 3, 32, 96, 128), fc.integer({ min: 1, max: 7 }));
const leadShape = (minLength: number): fc.Arbitrary<number[]> => fc.array(fc.integer({ min: 1, max: 5 }), { minLength, maxLength: 3 });
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

const float32Normals = (rng: Rng, n: number): Float32Array => Float32Array.from(rng.normals(n));
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** The block [offset, offset + size) along `axis` of row-major `data` of shape `shape`, by index arithmetic. */
function blockAlong(data: ArrayLike<number>, shape: readonly number[], axis: number, offset: number, size: number): number[] {
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) for (let j = 0; j < size; j++) for (let k = 0; k < inner; k++) out.push(data[(o * shape[axis] + offset + j) * inner + k]);
  return out;
}

/** Run `f` with `kernel` unregistered from the current backend (the fallback path), then register it again. */
function withoutKernel<T>(kernel: string, f: () => T): T {
  const config = tf.getKernel(kernel, tf.getBackend());
  if (config === undefined) return f();
  tf.unregisterKernel(kernel, tf.getBackend());
  try {
    return f();
  } finally {
    tf.registerKernel(config);
  }
}

const registered = (kernel: string): boolean => tf.getKernel(kernel, tf.getBackend()) !== undefined;

/** The kernel names `f` runs (tf.profile), its outputs disposed. */
async function kernelsRun(f: () => tf.Tensor | tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => f() as tf.Tensor[]);
  tf.dispose(info.result as tf.Tensor[]);
  return info.kernels.map((k) => k.name);
}

describe('7.14 Kernels of our own: the concat gradient\'s split and the bias sum', () => {
  it('wasm and cpu have both kernels after installGradients  [training.kernels.registeredWasmCpu]', () => {
    for (const backend of ['wasm', 'cpu']) {
      for (const kernel of [SPLIT_LAST_AXIS, SUM_LEADING_AXES]) expect(tf.getKernel(kernel, backend), `${kernel} on ${backend}`).toBeDefined();
    }
  });

  it('splitting along the last axis gives the slices of x, exactly, by the kernel and by the fallback (tf.split)  [training.kernels.splitEqSlices]', async () => {
    const hasKernel = registered(SPLIT_LAST_AXIS);
    await fc.assert(
      fc.asyncProperty(leadShape(0), fc.array(channel, { minLength: 1, maxLength: 4 }), seed, async (lead, sizes, s) => {
        const c = sizes.reduce((a, b) => a + b, 0);
        const shape = [...lead, c];
        const data = float32Normals(new Rng(s), prod(shape));
        const x = tf.tensor(data, shape);
        const paths: Array<[string, () => tf.Tensor[]]> = [[hasKernel ? 'kernel' : 'tf.split (no kernel on this backend)', () => splitLastAxis(x, sizes)]];
        if (hasKernel) paths.push(['fallback tf.split', () => withoutKernel(SPLIT_LAST_AXIS, () => splitLastAxis(x, sizes))]);
        for (const [what, run] of paths) {
          const pieces = run();
          expect(pieces.length, what).toBe(sizes.length);
          let offset = 0;
          for (let i = 0; i < sizes.length; i++) {
            expect(pieces[i].shape, `${what}: piece ${i} of [${sizes}] from [${shape}]`).toEqual([...lead, sizes[i]]);
            expect(Array.from(await pieces[i].data()), `${what}: piece ${i} of [${sizes}] from [${shape}]`).toEqual(blockAlong(data, shape, shape.length - 1, offset, sizes[i]));
            offset += sizes[i];
          }
          tf.dispose(pieces);
        }
        x.dispose();
      }),
      { numRuns: 60, examples: [[[2, 4, 4], [64, 32], 1], [[3], [1, 1, 1], 2], [[], [96], 3]] },
    );
  });

  it('the gradient of Σ r ⊙ concat(x₀, x₁, …) is r\'s blocks, exactly, along the last axis (by the kernel where registered) and any other  [training.kernels.concatGradEqFiniteDiff]', async () => {
    const hasKernel = registered(SPLIT_LAST_AXIS);
    await fc.assert(
      fc.asyncProperty(leadShape(0), fc.array(channel, { minLength: 2, maxLength: 4 }), fc.nat(), fc.boolean(), seed, async (lead, sizes, axisPick, lastAxis, s) => {
        const rank = lead.length + 1;
        const axis = lastAxis || rank === 1 ? rank - 1 : axisPick % (rank - 1);
        // the pieces' sizes along the concatenation axis; the other axes are lead's (the last one 1 + the pick)
        const base = [...lead, 1 + (axisPick % 3)];
        const shapes = sizes.map((n) => base.map((d, i) => (i === axis ? n : d)));
        const out = base.map((d, i) => (i === axis ? sizes.reduce((a, b) => a + b, 0) : d));
        const rng = new Rng(s);
        const xs = shapes.map((sh) => tf.tensor(float32Normals(rng, prod(sh)), sh));
        const rData = float32Normals(rng, prod(out));
        const r = tf.tensor(rData, out);
        const grads = (): tf.Tensor[] => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(tf.concat(a, axis), r)))(xs);
        const paths: Array<[string, () => tf.Tensor[]]> = [['installed gradient', grads]];
        if (hasKernel) paths.push(['installed gradient without the kernel (tf.split)', () => withoutKernel(SPLIT_LAST_AXIS, grads)]);
        const what = `axis ${axis} of [${out}], pieces [${sizes}]`;
        for (const [path, run] of paths) {
          const gs = run();
          let offset = 0;
          for (let i = 0; i < sizes.length; i++) {
            expect(gs[i].shape, `${path}, ∂/∂x${i}, ${what}`).toEqual(shapes[i]);
            // Σ r ⊙ y is linear in each xᵢ: its central difference is r's block exactly, and so must the gradient be
            expect(Array.from(await gs[i].data()), `${path}, ∂/∂x${i}, ${what}`).toEqual(blockAlong(rData, out, axis, offset, sizes[i]));
            offset += sizes[i];
          }
          tf.dispose(gs);
        }
        // the kernel runs exactly when it is registered and the axis is the last one; tfjs's SplitV otherwise
        const names = await kernelsRun(grads);
        const viaKernel = hasKernel && axis === rank - 1;
        expect({ [SPLIT_LAST_AXIS]: names.includes(SPLIT_LAST_AXIS), SplitV: names.includes('SplitV') }, what).toEqual({ [SPLIT_LAST_AXIS]: viaKernel, SplitV: !viaKernel });
        tf.dispose([...xs, r]);
      }),
      { numRuns: 60, examples: [[[2, 4, 4], [64, 32], 0, true, 1], [[2, 3], [1, 3], 1, false, 2]] },
    );
  });

  it('a bias\'s gradient (sumToShape to [C] or [1, …, 1, C]) is the float64 sum over every leading axis, rounded to float32, by the kernel; the fallback within float32 sums  [training.kernels.biasSumEqFloat64]', async () => {
    const hasKernel = registered(SUM_LEADING_AXES);
    const bias = fc.tuple(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }), channel, fc.boolean(), fc.constantFrom<1 | -1>(1, -1), seed);
    await fc.assert(
      fc.asyncProperty(bias, async ([lead, c, keepRank, sign, s]) => {
        const shape = [...lead, c];
        const data = float32Normals(new Rng(s), prod(shape));
        const sum64 = new Float64Array(c);
        const abs64 = new Float64Array(c);
        for (let i = 0; i < data.length; i++) {
          sum64[i % c] += data[i];
          abs64[i % c] += Math.abs(data[i]);
        }
        const scale = (v: ArrayLike<number>): Float64Array => Float64Array.from(v, (u, j) => u / (abs64[j] || 1));
        const want = scale(Float64Array.from(sum64, (v) => sign * v));
        const target = keepRank ? [...lead.map(() => 1), c] : [c];
        const dy = tf.tensor(data, shape);
        const paths: Array<[string, () => tf.Tensor, typeof KERNEL_SUM]> = [];
        if (hasKernel) {
          paths.push(['sumToShape (kernel)', () => sumToShape(dy, target, sign), KERNEL_SUM]);
          paths.push(['sumLeadingAxes (kernel)', () => (sign === 1 ? sumLeadingAxes(dy) : tf.tidy(() => tf.neg(sumLeadingAxes(dy)))), KERNEL_SUM]);
        }
        paths.push([hasKernel ? 'sumToShape without the kernel (two-step Sum)' : 'sumToShape (no kernel on this backend: two-step Sum)', () => withoutKernel(SUM_LEADING_AXES, () => sumToShape(dy, target, sign)), FALLBACK_SUM]);
        for (const [what, run, tol] of paths) {
          const got = run();
          expect(got.shape, what).toEqual(what.startsWith('sumLeadingAxes') ? [c] : target);
          expect(scale(await got.data())).toBeCloseWithin(want, tol, { what: `${what}: [${shape}] → [${target}], sign ${sign}, divided by Σ|δ|` });
          got.dispose();
        }
        const names = await kernelsRun(() => sumToShape(dy, target, sign));
        // (to [1, …, 1, C] from δ with one row nothing is summed: a reshape)
        expect(names.includes(SUM_LEADING_AXES), `${SUM_LEADING_AXES} used for [${shape}] → [${target}]`).toBe(hasKernel && !(keepRank && prod(lead) === 1));
        dy.dispose();
      }),
      { numRuns: 60, examples: [[[[4, 32, 32], 32, false, 1, 1]], [[[8, 16, 16], 64, true, -1, 2]], [[[5], 1, false, 1, 3]]] },
    );
  });

  it('sums that are not a bias\'s (a kept leading axis, a summed last axis) do not use the kernel and equal float64  [training.kernels.nonBiasSumUnchanged]', async () => {
    const rng = new Rng(7);
    for (const [shape, target] of [
      [[2, 3, 4, 5], [2, 1, 1, 5]],
      [[2, 3, 4, 5], [4, 1]],
      [[3, 4, 5], [1, 4, 5]],
      [[6, 5], [6, 1]],
    ] as Array<[number[], number[]]>) {
      const data = float32Normals(rng, prod(shape));
      const dy = tf.tensor(data, shape);
      const want = new Float64Array(prod(target));
      const strides = target.map((_, i) => prod(target.slice(i + 1)));
      const lead = shape.length - target.length;
      for (let i = 0; i < data.length; i++) {
        let rem = i;
        let j = 0;
        for (let a = shape.length - 1; a >= 0; a--) {
          const idx = rem % shape[a];
          rem = Math.floor(rem / shape[a]);
          const t = a - lead;
          if (t >= 0 && target[t] !== 1) j += idx * strides[t];
        }
        want[j] += data[i];
      }
      const names = await kernelsRun(() => sumToShape(dy, target, 1));
      expect(names.includes(SUM_LEADING_AXES), `[${shape}] → [${target}]`).toBe(false);
      const got = sumToShape(dy, target, 1);
      expect(await got.data()).toBeCloseWithin(want, override({ rtol: 1e-5, atol: 1e-5 }, 'float32 sums of at most 24 standard normals'), { what: `[${shape}] → [${target}]` });
      tf.dispose([got, dy]);
    }
  });

  it('the concat gradient and the bias sum leave no tensor and no backend buffer behind  [training.kernels.noLeak]', () => {
    const x = tf.randomNormal([4, 8, 8, 32], 0, 1, 'float32', 1);
    const skip = tf.randomNormal([4, 8, 8, 16], 0, 1, 'float32', 2);
    const b = tf.zeros([48]);
    const step = (): void => {
      const gs = tf.grads((p: tf.Tensor, q: tf.Tensor, bias: tf.Tensor) => tf.sum(tf.square(tf.add(tf.concat([p, q], 3), bias))))([x, skip, b]);
      tf.dispose(gs);
      tf.dispose([...splitLastAxis(x, [1, 3, 28]), sumLeadingAxes(x)]);
    };
    step();
    const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
    for (let i = 0; i < 10; i++) step();
    expect({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() }).toEqual(before);
    tf.dispose([x, skip, b]);
  });
});
