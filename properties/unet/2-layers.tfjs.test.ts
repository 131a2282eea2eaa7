import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { readJson, tensorAt, valueAt } from '../../src/formats/jsonTensor.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { swish } from '../../reference/nn/activation.ts';
import { dotProductAttention } from '../../reference/nn/attention.ts';
import { conv2dSame, downsample, upsampleNearest2x } from '../../reference/nn/conv.ts';
import { groupNorm } from '../../reference/nn/norm.ts';
import { timestepEmbedding } from '../../reference/nn/timestepEmbedding.ts';

/** float32 layer vs a float64 loop over the definition: rounding of sums over up to a few hundred terms. */
// Measured: max |Δ|/scale = 3.1e-7 over 3000 random cases on wasm; 1e-5 leaves a 30× margin for other backends.
const GROUPNORM = override({ rtol: 0, atol: 1e-5 }, 'GroupNorm vs float64, divided by each element\'s condition scale |γ|(|x| + |μ|)/σ + |β|: the centring x − μ cancels in float32 (found with FC_SEED=4: two close values in a group of 2)');
const LAYER = override({ rtol: 1e-4, atol: 2e-5 }, 'float32 layer vs float64 definition: sums of up to ~600 products, backend summation order');

const normals = (rng: Rng, n: number): Float32Array => Float32Array.from(rng.normals(n));

/** Direct float64 convolution, NHWC, kernel [k,k,in,out], given stride and (top, left) padding; zero outside. */
function convRef(x: Float32Array, [n, h, w, ci]: number[], k: Float32Array, kk: number, co: number, b: Float32Array, stride: number, padTL: number, [ho, wo]: number[]): Float64Array {
  const out = new Float64Array(n * ho * wo * co);
  for (let e = 0; e < n; e++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++)
        for (let o = 0; o < co; o++) {
          let s = b[o];
          for (let a = 0; a < kk; a++)
            for (let c = 0; c < kk; c++) {
              const y = i * stride + a - padTL;
              const z = j * stride + c - padTL;
              if (y < 0 || y >= h || z < 0 || z >= w) continue;
              for (let q = 0; q < ci; q++) s += x[((e * h + y) * w + z) * ci + q] * k[((a * kk + c) * ci + q) * co + o];
            }
          out[((e * ho + i) * wo + j) * co + o] = s;
        }
  return out;
}

describe('6.3 The UNet: layers against their definitions', () => {
  it('GroupNorm normalises each group of channels over positions, then scales and shifts per channel  [unet.nn.groupNormEqDefinition]', async () => {
    // Domains: N ≤ 2, H, W ≤ 4 and C ∈ {8, 64} with 4 or 32 groups keep the float64 loop instant.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom<[number, number]>([8, 4], [64, 32]), fc.integer(), async (n, hw, [c, g], seed) => {
        const rng = new Rng(seed | 0);
        const x = Float32Array.from(rng.normals(n * hw * hw * c).map((v, i) => 3 * v + (i % 5))); // non-zero group means
        const gamma = normals(rng, c);
        const beta = normals(rng, c);
        const y = tf.tidy(() => groupNorm(tf.tensor4d(x, [n, hw, hw, c]), tf.tensor1d(gamma), tf.tensor1d(beta), g, 1e-6));
        const got = await y.data();
        y.dispose();
        const cg = c / g;
        const want = new Float64Array(x.length);
        const scale = new Float64Array(x.length);
        for (let e = 0; e < n; e++)
          for (let gi = 0; gi < g; gi++) {
            const idx: number[] = [];
            for (let p = 0; p < hw * hw; p++) for (let q = 0; q < cg; q++) idx.push((e * hw * hw + p) * c + gi * cg + q);
            const mean = idx.reduce((s, i) => s + x[i], 0) / idx.length;
            const varr = idx.reduce((s, i) => s + (x[i] - mean) ** 2, 0) / idx.length;
            for (const i of idx) {
              want[i] = (gamma[i % c] * (x[i] - mean)) / Math.sqrt(varr + 1e-6) + beta[i % c];
              // float32 rounds x and μ by ~u·|x|, u·|μ| before x − μ cancels, and 1/σ amplifies that: with few
              // values per group (C/G = 2 at 1×1) two close values make σ tiny, so the error scale is this, not |y|.
              scale[i] = (Math.abs(gamma[i % c]) * (Math.abs(x[i]) + Math.abs(mean))) / Math.sqrt(varr + 1e-6) + Math.abs(beta[i % c]);
            }
          }
        expect(Float64Array.from(got, (v, i) => v / scale[i])).toBeCloseWithin(want.map((v, i) => v / scale[i]), GROUPNORM, { shape: [n, hw, hw, c] });
      }),
      { numRuns: 10 },
    );
  });

  it('a 3×3 convolution pads one pixel on every side and a 1×1 convolution is a channel product  [unet.nn.convSameEqDefinition]', async () => {
    const rng = new Rng(11);
    for (const kk of [3, 1]) {
      const shape = [2, 5, 4, 3];
      const x = normals(rng, 2 * 5 * 4 * 3);
      const k = normals(rng, kk * kk * 3 * 4);
      const b = normals(rng, 4);
      const y = tf.tidy(() => conv2dSame(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor4d(k, [kk, kk, 3, 4]), tf.tensor1d(b)));
      expect(y.shape).toEqual([2, 5, 4, 4]);
      const got = await y.data();
      y.dispose();
      expect(got).toBeCloseWithin(convRef(x, shape, k, kk, 4, b, 1, (kk - 1) / 2, [5, 4]), LAYER, { what: `${kk}×${kk}` });
    }
  });

  it('downsampling pads only the right and bottom, then convolves 3×3 with stride 2 (or averages 2×2 blocks)  [unet.nn.downsamplePadding]', async () => {
    const rng = new Rng(12);
    const shape = [2, 6, 6, 3];
    const x = normals(rng, 2 * 6 * 6 * 3);
    const k = normals(rng, 9 * 3 * 3);
    const b = normals(rng, 3);
    const [y, avg] = tf.tidy(() => {
      const xt = tf.tensor4d(x, [2, 6, 6, 3]);
      return [downsample(xt, tf.tensor4d(k, [3, 3, 3, 3]), tf.tensor1d(b)), downsample(xt, null, null)];
    });
    expect(y.shape).toEqual([2, 3, 3, 3]);
    // padTL = 0: window i covers rows 2i, 2i+1, 2i+2 — the last one reads the zero row added at the bottom.
    expect(await y.data()).toBeCloseWithin(convRef(x, shape, k, 3, 3, b, 2, 0, [3, 3]), LAYER);
    const a = await avg.data();
    expect(a[0]).toBeCloseWithin((x[0] + x[3] + x[18] + x[21]) / 4, LAYER);
    tf.dispose([y, avg]);
  });

  it('nearest upsampling copies each pixel to a 2×2 block, and its gradient sums the block, for batch > 1  [unet.nn.upsampleExactWithGradient]', async () => {
    const rng = new Rng(13);
    const [n, h, w, c] = [3, 2, 3, 2];
    const x = normals(rng, n * h * w * c);
    const g = normals(rng, n * 4 * h * w * c);
    const [y, dx] = tf.tidy(() => {
      const xt = tf.tensor4d(x, [n, h, w, c]);
      const gt = tf.tensor4d(g, [n, 2 * h, 2 * w, c]);
      const f = (v: tf.Tensor): tf.Tensor => upsampleNearest2x(v as tf.Tensor4D).mul(gt).sum();
      return [upsampleNearest2x(xt), tf.grad(f)(xt)];
    });
    const yv = await y.data();
    const dv = await dx.data();
    tf.dispose([y, dx]);
    const wantY = new Float64Array(yv.length);
    const wantD = new Float64Array(x.length);
    for (let e = 0; e < n; e++)
      for (let i = 0; i < 2 * h; i++)
        for (let j = 0; j < 2 * w; j++)
          for (let q = 0; q < c; q++) {
            const src = ((e * h + (i >> 1)) * w + (j >> 1)) * c + q;
            const dst = ((e * 2 * h + i) * 2 * w + j) * c + q;
            wantY[dst] = x[src];
            wantD[src] += g[dst];
          }
    expect(yv).toBeCloseWithin(wantY, override({ rtol: 0, atol: 0 }, 'a copy is exact'));
    expect(dv).toBeCloseWithin(wantD, override({ rtol: 1e-6, atol: 1e-6 }, 'float32 sum of four terms'), { shape: [n, h, w, c] });
  });

  it('attention weights are a softmax over keys of q·k/√C, and the output mixes the values with them  [unet.nn.attentionEqDefinition]', async () => {
    const rng = new Rng(14);
    // Two sizes: the second (P²·C = 2¹⁸) takes the per-example path that the wasm backend uses for large maps.
    for (const [n, p, c] of [
      [2, 5, 4],
      [2, 64, 64],
    ]) {
      const [q, k, v] = [normals(rng, n * p * c), normals(rng, n * p * c), normals(rng, n * p * c)];
      const y = tf.tidy(() => dotProductAttention(tf.tensor3d(q, [n, p, c]), tf.tensor3d(k, [n, p, c]), tf.tensor3d(v, [n, p, c])));
      const got = await y.data();
      y.dispose();
      const want = new Float64Array(n * p * c);
      for (let e = 0; e < n; e++)
        for (let i = 0; i < p; i++) {
          const logits = Array.from({ length: p }, (_, j) => {
            let s = 0;
            for (let a = 0; a < c; a++) s += q[(e * p + i) * c + a] * k[(e * p + j) * c + a];
            return s / Math.sqrt(c);
          });
          const m = Math.max(...logits);
          const ws = logits.map((l) => Math.exp(l - m));
          const z = ws.reduce((s, u) => s + u, 0);
          for (let a = 0; a < c; a++) want[(e * p + i) * c + a] = ws.reduce((s, u, j) => s + (u / z) * v[(e * p + j) * c + a], 0);
        }
      expect(got).toBeCloseWithin(want, LAYER, { shape: [n, p, c], what: `[${n},${p},${c}]` });
    }
  });

  it('swish is x·σ(x)  [unet.nn.swishEqDefinition]', async () => {
    const xs = [-30, -5, -1, -1e-3, 0, 1e-3, 0.5, 2, 20];
    const y = tf.tidy(() => swish(tf.tensor1d(xs)));
    expect(await y.data()).toBeCloseWithin(
      xs.map((x) => x / (1 + Math.exp(-x))),
      override({ rtol: 1e-6, atol: 1e-7 }, 'float32 sigmoid and product'),
    );
    y.dispose();
  });

  it('the timestep embedding equals the reference’s get_timestep_embedding for every recorded width ≥ 4 and refuses widths it divides by zero for  [unet.nn.timestepEmbeddingGolden]', async () => {
    const FILE = 'golden/upstream/timestep_embedding.json';
    const root = readJson(FILE);
    const records = valueAt(root, 'records', FILE) as Array<{ dim: number }>;
    let compared = 0;
    for (let r = 0; r < records.length; r++) {
      const dim = records[r].dim;
      if (dim < 4) continue;
      const t = tensorAt(root, `records.${r}.t`, FILE);
      const want = tensorAt(root, `records.${r}.ho_pesser_get_timestep_embedding`, FILE);
      const e = tf.tidy(() => timestepEmbedding(tf.tensor1d(Float32Array.from(t.data)), dim));
      const got = await e.data();
      e.dispose();
      // README: the float32 argument t·f carries an error ∝ t; atol 5e−6 for t ≤ 100 and 5e−4 above.
      for (let i = 0; i < t.shape[0]; i++) {
        const tol = override({ rtol: 0, atol: t.data[i] <= 100 ? 5e-6 : 5e-4 }, 'float32 t·f argument error grows with t (golden README)');
        expect(got.slice(i * dim, (i + 1) * dim)).toBeCloseWithin(want.data.slice(i * dim, (i + 1) * dim), tol, { what: `dim ${dim}, t = ${t.data[i]}` });
      }
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(14);
    for (const dim of [2, 3]) expect(() => tf.tidy(() => timestepEmbedding(tf.tensor1d([1]), dim))).toThrow(/dim must be an integer ≥ 4/);
  });
});
