import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { installGradients } from '../../reference/grad/index.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { avgPool64, conv2d64, dot64, finiteDiff, matMul64, resizeNearest64, t64, tfPadding, type T64 } from './support/f64.ts';

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
