import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { FLIP_SPATIAL_SWAP_CHANNELS, flipSpatialSwapChannels, installGradients, sumToShape } from '../../reference/grad/index.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { avgPool64, broadcast64, conv2d64, reduceTo64, dot64, finiteDiff, matMul64, resizeNearest64, t64, tfPadding, type T64 } from './support/f64.ts';

installGradients();

/** Float32-representable standard normals, so that float64 and float32 compute the same function. */
function normals(rng: Rng, n: number): Float64Array {
  return Float64Array.from(rng.normals(n), (v) => Math.fround(v));
}

/** The gradient of Σ r ⊙ f(inputs) on the current backend with the installed gradients. */
async function tfGrads(f: (xs: tf.Tensor[]) => tf.Tensor, inputs: T64[], r: Float64Array): Promise<Float32Array[]> {
  const xs = inputs.map((t) => tf.tensor(Float32Array.from(t.data), t.shape));
  const gs = tf.tidy(() => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(a), tf.tensor(Float32Array.from(r), f(a).shape))))(xs));
  const out = await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>));
  tf.dispose([...xs, ...gs]);
  return out;
}

/** Run `fn` on the cpu backend and come back to the current one. */
async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.getBackend();
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend cannot be set');
  try {
    return await fn();
  } finally {
    if (!(await tf.setBackend(before))) throw new Error(`cannot return to the ${before} backend`);
  }
}

// Gradient entries are sums of up to ~150 products of standard normals; float32 rounding of such a sum is
// about 1e-7 × Σ|terms| (≤ ~100), so an absolute 5e-5 with a 1e-4 relative part covers it with room.
const GRAD_TOL = override({ rtol: 1e-4, atol: 5e-5 }, 'float32 sums of up to ~150 products of standard normals vs float64');

type Pad = 'same' | 'valid' | [[number, number], [number, number]];

/** A convolution case: shapes, strides, padding; domains kept tiny so float64 differences stay fast. */
const convCase = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }), // batch > 1 is the case the cpu resize bug taught us to check
    h: fc.integer({ min: 1, max: 7 }), // odd and even sizes: stride-2 `same` padding is asymmetric for even ones
    w: fc.integer({ min: 1, max: 7 }),
    cin: fc.integer({ min: 1, max: 3 }),
    cout: fc.integer({ min: 1, max: 3 }),
    kh: fc.integer({ min: 1, max: 3 }), // 1×1 (nin shortcut, attention q/k/v) and 3×3 (every other conv)
    kw: fc.integer({ min: 1, max: 3 }),
    sh: fc.integer({ min: 1, max: 2 }), // stride 2 is the UNet's downsampling
    sw: fc.integer({ min: 1, max: 2 }),
    pad: fc.oneof(
      fc.constant<Pad>('same'),
      fc.constant<Pad>('valid'),
      // explicit padding, as the reference's (0,1,0,1) downsampling pad would be if written into the conv
      fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })).map(
        ([a, b, c, d]): Pad => [[a, b], [c, d]],
      ),
    ),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .filter((c) => {
    const ph = tfPadding(c.h, c.kh, c.sh, c.pad === 'same' || c.pad === 'valid' ? c.pad : c.pad[0]);
    const pw = tfPadding(c.w, c.kw, c.sw, c.pad === 'same' || c.pad === 'valid' ? c.pad : c.pad[1]);
    return ph.out >= 1 && pw.out >= 1;
  });

function tfPad(p: Pad): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  return p === 'same' || p === 'valid' ? p : [[0, 0], p[0], p[1], [0, 0]];
}

describe('7.1 Gradients on every backend', () => {
  it('the installed conv2d gradient equals float64 finite differences for any stride, padding and batch  [training.grad.conv2dEqFiniteDiff]', async () => {
    await fc.assert(
      fc.asyncProperty(convCase, async (c) => {
        const rng = new Rng(c.seed);
        const x = t64([c.n, c.h, c.w, c.cin], normals(rng, c.n * c.h * c.w * c.cin));
        const w = t64([c.kh, c.kw, c.cin, c.cout], normals(rng, c.kh * c.kw * c.cin * c.cout));
        const y = conv2d64(x, w, [c.sh, c.sw], c.pad);
        const r = normals(rng, y.data.length);
        const [gx, gw] = finiteDiff(([a, b]) => dot64(conv2d64(a, b, [c.sh, c.sw], c.pad), r), [x, w]);
        const [tx, tw] = await tfGrads(([a, b]) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, [c.sh, c.sw], tfPad(c.pad)), [x, w], r);
        expect(tx).toBeCloseWithin(gx, GRAD_TOL, { shape: x.shape, what: `∂/∂x, ${JSON.stringify(c)}` });
        expect(tw).toBeCloseWithin(gw, GRAD_TOL, { shape: w.shape, what: `∂/∂w, ${JSON.stringify(c)}` });
      }),
      { numRuns: 40 },
    );
  });

  it('the installed conv2d gradient agrees with the cpu backend\'s own backprop kernels at UNet-like shapes  [training.grad.conv2dEqCpuKernels]', async () => {
    // 3×3 convolutions at stride 1 and 2 with `same` padding, batch 2, 8 channels on a 9×8 image (odd and even
    // sides): the shapes of the UNet's convolutions, small enough for the cpu kernels.
    const rng = new Rng(7);
    for (const s of [1, 2]) {
      const xs = [2, 9, 8, 8];
      const ws = [3, 3, 8, 6];
      const x = Float32Array.from(rng.normals(2 * 9 * 8 * 8));
      const w = Float32Array.from(rng.normals(3 * 3 * 8 * 6));
      const ys = [2, Math.ceil(9 / s), Math.ceil(8 / s), 6];
      const r = Float32Array.from(rng.normals(ys.reduce((a, b) => a * b, 1)));
      const [gx, gw] = await tfGrads(([a, b]) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'same'), [t64(xs, x), t64(ws, w)], Float64Array.from(r));
      const [cx, cw] = await onCpu(async () => {
        const tx = tf.tensor4d(x, xs as [number, number, number, number]);
        const tw = tf.tensor4d(w, ws as [number, number, number, number]);
        const dy = tf.tensor4d(r, ys as [number, number, number, number]);
        const bx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: tw }, { strides: s, pad: 'same', dataFormat: 'NHWC', inputShape: xs }) as tf.Tensor;
        const bw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tx, dy }, { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: ws }) as tf.Tensor;
        const out = [await bx.data(), await bw.data()];
        tf.dispose([tx, tw, dy, bx, bw]);
        return out;
      });
      const tol = override({ rtol: 1e-4, atol: 1e-4 }, 'sums of up to 72 products in a different order on two backends');
      expect(gx).toBeCloseWithin(cx, tol, { shape: xs, what: `∂/∂x at stride ${s}` });
      expect(gw).toBeCloseWithin(cw, tol, { shape: ws, what: `∂/∂w at stride ${s}` });
    }
  });

  it('the installed matMul gradient equals float64 finite differences with transpose flags and broadcast batches  [training.grad.matMulEqFiniteDiff]', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          batchA: fc.constantFrom(1, 3), // attention multiplies [B·heads, HW, C] tensors; 1 broadcasts
          batchB: fc.constantFrom(1, 3),
          m: fc.integer({ min: 1, max: 5 }),
          k: fc.integer({ min: 1, max: 5 }),
          n: fc.integer({ min: 1, max: 5 }),
          ta: fc.boolean(),
          tb: fc.boolean(),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        async (c) => {
          const rng = new Rng(c.seed);
          const as = [c.batchA, ...(c.ta ? [c.k, c.m] : [c.m, c.k])];
          const bs = [c.batchB, ...(c.tb ? [c.n, c.k] : [c.k, c.n])];
          const a = t64(as, normals(rng, as[0] * as[1] * as[2]));
          const b = t64(bs, normals(rng, bs[0] * bs[1] * bs[2]));
          const y = matMul64(a, b, c.ta, c.tb);
          const r = normals(rng, y.data.length);
          const [ga, gb] = finiteDiff(([p, q]) => dot64(matMul64(p, q, c.ta, c.tb), r), [a, b]);
          const [ta, tb] = await tfGrads(([p, q]) => tf.matMul(p, q, c.ta, c.tb), [a, b], r);
          expect(ta).toBeCloseWithin(ga, GRAD_TOL, { shape: as, what: `∂/∂a, ${JSON.stringify(c)}` });
          expect(tb).toBeCloseWithin(gb, GRAD_TOL, { shape: bs, what: `∂/∂b, ${JSON.stringify(c)}` });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the installed nearest-neighbour resize gradient equals float64 finite differences for batch > 1  [training.grad.resizeEqFiniteDiff]', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 4 }),
          w: fc.integer({ min: 1, max: 4 }),
          c: fc.integer({ min: 1, max: 2 }),
          // integer factors (the UNet's ×2) take the block sum; other sizes the one-hot path
          oh: fc.integer({ min: 1, max: 8 }),
          ow: fc.integer({ min: 1, max: 8 }),
          half: fc.boolean(),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        async (c) => {
          const rng = new Rng(c.seed);
          const x = t64([c.n, c.h, c.w, c.c], normals(rng, c.n * c.h * c.w * c.c));
          const r = normals(rng, c.n * c.oh * c.ow * c.c);
          const [gx] = finiteDiff(([a]) => dot64(resizeNearest64(a, c.oh, c.ow, c.half), r), [x]);
          const [tx] = await tfGrads(([a]) => tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [c.oh, c.ow], false, c.half), [x], r);
          expect(tx).toBeCloseWithin(gx, GRAD_TOL, { shape: x.shape, what: JSON.stringify(c) });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the installed average-pooling gradient equals float64 finite differences, global (as groupNorm pools) or windowed  [training.grad.avgPoolEqFiniteDiff]', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 2, max: 5 }),
          w: fc.integer({ min: 2, max: 5 }),
          c: fc.integer({ min: 1, max: 3 }),
          global: fc.boolean(), // global: the broadcast gradient; otherwise 2×2 stride 2 goes to tfjs's own
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        async (c) => {
          const rng = new Rng(c.seed);
          const [fh, fw, s] = c.global ? [c.h, c.w, 1] : [2, 2, 2];
          const x = t64([c.n, c.h, c.w, c.c], normals(rng, c.n * c.h * c.w * c.c));
          const y = avgPool64(x, fh, fw, s);
          const r = normals(rng, y.data.length);
          const [gx] = finiteDiff(([a]) => dot64(avgPool64(a, fh, fw, s), r), [x]);
          const [tx] = await tfGrads(([a]) => tf.avgPool(a as tf.Tensor4D, [fh, fw], s, 'valid'), [x], r);
          expect(tx).toBeCloseWithin(gx, GRAD_TOL, { shape: x.shape, what: JSON.stringify(c) });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('tfjs 4.22\'s own cpu ResizeNearestNeighborGrad is wrong for batch 2 (why the gradient is replaced)  [training.grad.cpuResizeBugWitness]', async () => {
    // N = 2, 2×2 → 4×4, δ = 0…31: the second image's block sums are 74, 82, 106, 114; the kernel gives others.
    const got = await onCpu(async () => {
      const images = tf.zeros([2, 2, 2, 1]);
      const dy = tf.tidy(() => tf.range(0, 32).reshape([2, 4, 4, 1]));
      const g = tf.engine().runKernel(tf.ResizeNearestNeighborGrad, { images, dy }, { alignCorners: false, halfPixelCenters: false }) as tf.Tensor;
      const d = Array.from(await g.data());
      tf.dispose([images, dy, g]);
      return d;
    });
    expect(got.slice(0, 4)).toEqual([10, 18, 42, 50]);
    expect(got.slice(4)).not.toEqual([74, 82, 106, 114]);
  });

  it('the installed add, sub and mul gradients equal float64 finite differences for any broadcast, a bias over leading axes included  [training.grad.elementwiseEqFiniteDiff]', async () => {
    type Op = 'add' | 'sub' | 'mul';
    const f64: Record<Op, (p: number, q: number) => number> = { add: (p, q) => p + q, sub: (p, q) => p - q, mul: (p, q) => p * q };
    const f32: Record<Op, (p: tf.Tensor, q: tf.Tensor) => tf.Tensor> = { add: tf.add, sub: tf.sub, mul: tf.mul };
    // An operand's shape: the output's with some axes set to 1 (broadcast) and some leading axes dropped.
    // A third of the operands are not broadcast (the residual adds), a third only over inner axes (the timestep
    // embedding [N, 1, 1, C]), a third anyhow, so that each kind is well represented.
    const ones = (rank: number) => fc.array(fc.boolean(), { minLength: rank, maxLength: rank });
    const operand = (rank: number) =>
      fc.oneof(
        fc.constant({ ones: Array<boolean>(rank).fill(false), drop: 0 }),
        ones(rank).map((o) => ({ ones: o.map((x, i) => i > 0 && x), drop: 0 })),
        fc.record({ ones: ones(rank), drop: fc.integer({ min: 0, max: rank }) }),
      );
    const shapeOf = (out: number[], o: { ones: boolean[]; drop: number }): number[] => out.map((d, i) => (o.ones[i] ? 1 : d)).slice(o.drop);
    const elementwiseCase = fc
      // Rank ≤ 4 as the UNet's NHWC tensors; sizes ≥ 2, so that an axis set to 1 is a real broadcast (the bias example covers size 1).
      .array(fc.integer({ min: 2, max: 4 }), { minLength: 1, maxLength: 4 })
      .chain((out) => fc.record({ out: fc.constant(out), a: operand(out.length), b: operand(out.length), op: fc.constantFrom<Op>('add', 'sub', 'mul'), seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }) }));
    // The conv bias: [C] broadcast over [N, H, W, C], the case summed in two steps.
    const bias = { out: [2, 3, 2, 4], a: { ones: [false, false, false, false], drop: 0 }, b: { ones: [false, false, false, false], drop: 3 }, op: 'sub' as Op, seed: 5 };
    // Spread: how often an operand is broadcast only over leading axes (the two-step sum), elsewhere, or not at all.
    const spread = { leading: 0, other: 0, none: 0 };
    const classify = (out: number[], s: number[]): keyof typeof spread => {
      const padded = [...Array<number>(out.length - s.length).fill(1), ...s];
      const reduced = out.map((d, i) => d > 1 && padded[i] === 1);
      if (!reduced.includes(true)) return 'none';
      const last = reduced.lastIndexOf(true);
      return out.slice(0, last + 1).every((d, i) => d === 1 || reduced[i]) ? 'leading' : 'other';
    };
    await fc.assert(
      fc.asyncProperty(elementwiseCase, async (c) => {
        const rng = new Rng(c.seed);
        const as = shapeOf(c.out, c.a);
        const bs = shapeOf(c.out, c.b);
        spread[classify(c.out, as)]++;
        spread[classify(c.out, bs)]++;
        const size = (s: number[]): number => s.reduce((p, q) => p * q, 1);
        const a = t64(as, normals(rng, size(as)));
        const b = t64(bs, normals(rng, size(bs)));
        const y = broadcast64(a, b, f64[c.op]);
        const r = normals(rng, y.data.length);
        const [ga, gb] = finiteDiff(([p, q]) => dot64(broadcast64(p, q, f64[c.op]), r), [a, b]);
        const [ta, tb] = await tfGrads(([p, q]) => f32[c.op](p, q), [a, b], r);
        expect(ta).toBeCloseWithin(ga, GRAD_TOL, { shape: as, what: `∂/∂a, ${JSON.stringify(c)}` });
        expect(tb).toBeCloseWithin(gb, GRAD_TOL, { shape: bs, what: `∂/∂b, ${JSON.stringify(c)}` });
        // The reduction itself (two-step over leading axes, tfjs's sum otherwise), against the float64 sum.
        const dy = tf.tensor(Float32Array.from(r), y.shape);
        for (const [s, sign] of [[as, 1], [bs, -1]] as const) {
          const got = sumToShape(dy, s, sign);
          const want = reduceTo64({ shape: y.shape, data: Float64Array.from(r, (v) => sign * v) }, s);
          expect(await got.data()).toBeCloseWithin(want.data, GRAD_TOL, { shape: s, what: `sumToShape(δ, [${s}], ${sign}), ${JSON.stringify(c)}` });
          got.dispose();
        }
        dy.dispose();
      }),
      { numRuns: 60, examples: [[bias]] },
    );
    expect(Math.min(spread.leading, spread.other, spread.none), `operands by broadcast kind: ${JSON.stringify(spread)}`).toBeGreaterThanOrEqual(10);
  });

  it('the input gradient\'s filter is w[k_h−1−a, k_w−1−b, c, o] as [k_h, k_w, C_out, C_in], by the kernel and by the composite path  [training.grad.flipSwapEqDefinition]', async () => {
    const backend = tf.getBackend();
    const kernel = tf.getKernel(FLIP_SPATIAL_SWAP_CHANNELS, backend);
    await fc.assert(
      fc.asyncProperty(
        fc.record({ kh: fc.integer({ min: 1, max: 3 }), kw: fc.integer({ min: 1, max: 3 }), cin: fc.integer({ min: 1, max: 5 }), cout: fc.integer({ min: 1, max: 5 }), seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }) }),
        async ({ kh, kw, cin, cout, seed }) => {
          const w = Float32Array.from(normals(new Rng(seed), kh * kw * cin * cout));
          const want: number[] = [];
          for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) for (let o = 0; o < cout; o++) for (let c = 0; c < cin; c++) want.push(w[(((kh - 1 - a) * kw + (kw - 1 - b)) * cin + c) * cout + o]);
          const tw = tf.tensor4d(w, [kh, kw, cin, cout]);
          const paths: Array<[string, () => tf.Tensor]> = [['kernel or composite', () => flipSpatialSwapChannels(tw)]];
          if (kernel) {
            // The composite path (what backends without the kernel run), with the kernel taken away for one call.
            paths.push(['composite', () => { tf.unregisterKernel(FLIP_SPATIAL_SWAP_CHANNELS, backend); try { return flipSpatialSwapChannels(tw); } finally { tf.registerKernel(kernel); } }]);
          }
          for (const [what, run] of paths) {
            const before = tf.memory().numTensors;
            const out = run();
            expect(out.shape, what).toEqual([kh, kw, cout, cin]);
            expect(Array.from(await out.data()), what).toEqual(want); // a permutation: exact
            out.dispose();
            expect(tf.memory().numTensors, `${what} leaks tensors`).toBe(before);
          }
          tw.dispose();
        },
      ),
      { numRuns: 30 },
    );
  });

  it('on wasm a clone and a same-dtype cast share the buffer: equal values, independent lifetimes, no leak; a cast to int32 still converts  [training.grad.wasmSharedCloneNoLeak]', async () => {
    if (tf.getBackend() !== 'wasm') return; // the sharing kernels are wasm's; cpu and webgl share by themselves
    const before = tf.memory();
    const x = tf.tensor1d([1.5, -2.25, 3]);
    const c = tf.clone(x);
    const f = tf.cast(x, 'float32');
    const i = tf.cast(x, 'int32');
    x.dispose();
    expect(Array.from(await c.data())).toEqual([1.5, -2.25, 3]);
    c.dispose();
    expect(Array.from(await f.data())).toEqual([1.5, -2.25, 3]);
    expect(i.dtype).toBe('int32');
    expect(Array.from(await i.data())).toEqual([1, -2, 3]);
    tf.dispose([f, i]);
    const after = tf.memory();
    expect([after.numTensors, after.numDataBuffers, after.numBytes]).toEqual([before.numTensors, before.numDataBuffers, before.numBytes]);
  });

  it('after installGradients the wasm backend has a Conv2DBackpropFilter kernel equal to float64 finite differences  [training.grad.wasmFilterKernel]', async () => {
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    if (tf.getBackend() !== 'wasm') return; // the kernel only runs on wasm; other backends have their own
    const rng = new Rng(11);
    const x = t64([2, 5, 6, 3], normals(rng, 2 * 5 * 6 * 3));
    const w = t64([3, 3, 3, 2], normals(rng, 3 * 3 * 3 * 2));
    const y = conv2d64(x, w, [2, 2], 'same');
    const r = normals(rng, y.data.length);
    const [, gw] = finiteDiff(([a, b]) => dot64(conv2d64(a, b, [2, 2], 'same'), r), [x, w]);
    const tx = tf.tensor4d(Float32Array.from(x.data), [2, 5, 6, 3]);
    const dy = tf.tensor4d(Float32Array.from(r), y.shape as [number, number, number, number]);
    const k = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tx, dy }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: w.shape }) as tf.Tensor;
    expect(await k.data()).toBeCloseWithin(gw, GRAD_TOL, { shape: w.shape });
    tf.dispose([tx, dy, k]);
  });
});
