import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swish } from '../../reference/nn/activation.ts';
import {
  FUSED_NORM_BACKENDS,
  fusedGroupNormAvailable,
  GROUP_NORM_SWISH,
  GROUP_NORM_SWISH_GRAD,
  groupNormSwishForward,
  groupNormSwishBackward,
  groupNormSwishFused,
  installGroupNormKernels,
} from '../../reference/nn/groupNormKernels.ts';
import { groupNorm } from '../../reference/nn/norm.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { need, requireCommands } from '../support/requires.ts';
import { attention64, dot64, finiteDiff, groupMoments64, groupNormSwish64, t64, type T64 } from './support/f64.ts';
import { attentionBackward, attentionForward, attentionFused, ATTENTION, ATTENTION_GRAD, fusedAttentionAvailable } from '../../reference/nn/attentionKernels.ts';
import { dotProductAttention } from '../../reference/nn/attention.ts';
import { CONV2D_FILTER_GRAD, conv2dFilterGrad, conv2dFilterGradComposite, convGeometry, filterGradKernelAvailable, filterGradLoops, installGradients, type FilterGradAttrs } from '../../reference/grad/index.ts';
import { conv2d64 } from './support/f64.ts';
import { installConvKernel, withTfjsConv } from '../../reference/nn/convKernel.ts';

installGroupNormKernels();

const EPS = 1e-6;
// Output divided by each element's condition scale |γ|(|x| + |μ|)/σ + |β| (as [unet.nn.groupNormEqDefinition]):
// float32 rounds x and μ before x − μ cancels, and 1/σ amplifies it; swish' ≤ 1.1 keeps the bound for the swish.
const NORM = override({ rtol: 0, atol: 1e-5 }, 'fused GroupNorm vs float64, scaled by the element\'s condition |γ|(|x|+|μ|)/σ + |β|: the centring cancels in float32');
// Gradient entries are sums over a group (≤ 64 values) of products of O(1) terms times 1/σ with σ ≳ 1 here.
const GRAD = override({ rtol: 1e-4, atol: 5e-5 }, 'float32 sums of up to 64 products of O(1) terms vs float64 central differences');
// Two float32 implementations of the same function with different summation and exp: a few ulps of O(1) values.
const IMPL = override({ rtol: 1e-5, atol: 2e-5 }, 'two float32 implementations (float32 SIMD with float64 sums; float64 loops rounded) differ by a few ulps');

// Attention output vs float64: convex combinations of O(1) values, softmax weights rounded to float32 and e^x to 2e-7.
const ATT = override({ rtol: 1e-5, atol: 1e-5 }, 'float32 attention vs float64: softmax weights and convex sums rounded to float32, e^x approximated to 2e-7');

/** (C, G) pairs: the UNet's 32 groups at 32 and 64 channels, and small ones with 1–4 channels per group. */
const channelsGroups = fc.constantFrom<[number, number]>([8, 4], [6, 2], [4, 1], [32, 32], [64, 32], [12, 3]);

const normalsF = (rng: Rng, n: number, scale = 1, shift = 0): Float64Array => Float64Array.from(rng.normals(n), (v, i) => Math.fround(scale * v + shift * (i % 5)));

function skipWithoutKernel(ctx: { skip: (note?: string) => never }): void {
  if (!fusedGroupNormAvailable()) ctx.skip(`the fused kernels run on ${FUSED_NORM_BACKENDS.join(' and ')}; ${tf.getBackend()} uses the composite groupNorm and swish`);
}

async function fusedGrads(x: T64, gamma: T64, beta: T64, groups: number, withSwish: boolean, r: Float64Array): Promise<Float32Array[]> {
  const ts = [x, gamma, beta].map((t) => tf.tensor(Float32Array.from(t.data), t.shape));
  const f = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(groupNormSwishFused(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, { groups, eps: EPS, swish: withSwish }), tf.tensor(Float32Array.from(r), x.shape))),
  );
  const gs = tf.tidy(() => f(ts));
  const out = await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>));
  tf.dispose([...ts, ...gs]);
  return out;
}

describe('7.12 Fused kernels: GroupNorm and swish, attention, the convolution and its filter gradient', () => {
  it('the fused kernel computes swish(GroupNorm(x)) and GroupNorm(x) as defined, in float32  [training.fused.normEqDefinition]', async (ctx) => {
    skipWithoutKernel(ctx);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), channelsGroups, fc.boolean(), fc.integer(), async (n, h, w, [c, g], sw, seed) => {
        const rng = new Rng(seed | 0);
        const x = t64([n, h, w, c], normalsF(rng, n * h * w * c, 3, 1)); // non-zero group means
        const gamma = t64([c], normalsF(rng, c));
        const beta = t64([c], normalsF(rng, c));
        const want = groupNormSwish64(x, gamma, beta, g, EPS, sw);
        const { mean, std } = groupMoments64(x, g, EPS);
        const y = tf.tidy(() => groupNormSwishFused(tf.tensor4d(Float32Array.from(x.data), [n, h, w, c]), tf.tensor1d(Float32Array.from(gamma.data)), tf.tensor1d(Float32Array.from(beta.data)), { groups: g, eps: EPS, swish: sw }));
        const got = await y.data();
        y.dispose();
        const scale = Float64Array.from(x.data, (v, i) => (Math.abs(gamma.data[i % c]) * (Math.abs(v) + Math.abs(mean[i]))) / std[i] + Math.abs(beta.data[i % c]));
        expect(Float64Array.from(got, (v, i) => v / scale[i])).toBeCloseWithin(want.data.map((v, i) => v / scale[i]), NORM, { shape: x.shape, what: `swish ${sw}, G = ${g}` });
      }),
      { numRuns: 30 },
    );
  });

  it('the fused kernel\'s gradient equals float64 finite differences with respect to x, γ and β  [training.fused.normGradEqFiniteDiff]', async (ctx) => {
    skipWithoutKernel(ctx);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom<[number, number]>([8, 4], [6, 2], [4, 1], [8, 8]),
        fc.boolean(),
        fc.integer(),
        async (n, h, w, [c, g], sw, seed) => {
          fc.pre(h * w * (c / g) >= 4); // a group of 2–3 values can have σ ≈ 0, where the gradient blows up
          const rng = new Rng(seed | 0);
          const x = t64([n, h, w, c], normalsF(rng, n * h * w * c, 2, 0.5));
          const gamma = t64([c], normalsF(rng, c, 1));
          const beta = t64([c], normalsF(rng, c));
          const r = normalsF(rng, x.data.length);
          const [gx, gg, gb] = finiteDiff(([a, b, d]) => dot64(groupNormSwish64(a, b, d, g, EPS, sw), r), [x, gamma, beta]);
          const [tx, tg, tb] = await fusedGrads(x, gamma, beta, g, sw, r);
          const what = `n ${n}, ${h}×${w}, C ${c}, G ${g}, swish ${sw}`;
          expect(tx).toBeCloseWithin(gx, GRAD, { shape: x.shape, what: `∂/∂x, ${what}` });
          expect(tg).toBeCloseWithin(gg, GRAD, { shape: [c], what: `∂/∂γ, ${what}` });
          expect(tb).toBeCloseWithin(gb, GRAD, { shape: [c], what: `∂/∂β, ${what}` });
        },
      ),
      { numRuns: 30 },
    );
  });

  it('at the UNet\'s shapes the fused kernel and its gradient agree with the composite tfjs ops  [training.fused.normEqComposite]', async (ctx) => {
    skipWithoutKernel(ctx);
    const rng = new Rng(12);
    for (const [shape, g, sw] of [
      [[2, 8, 8, 64], 32, true],
      [[1, 16, 16, 32], 32, true],
      [[3, 4, 4, 128], 32, false],
    ] as Array<[[number, number, number, number], number, boolean]>) {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor4d(Float32Array.from(rng.normals(size), (v) => 2 * v + 0.3), shape);
      const gamma = tf.tensor1d(Float32Array.from(rng.normals(shape[3]), (v) => 1 + 0.3 * v));
      const beta = tf.tensor1d(Float32Array.from(rng.normals(shape[3])));
      const r = tf.tensor4d(Float32Array.from(rng.normals(size)), shape);
      const comp = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor): tf.Tensor => {
        const y = groupNorm(a as tf.Tensor4D, b as tf.Tensor1D, d as tf.Tensor1D, g, EPS);
        return sw ? swish(y) : y;
      };
      const fused = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor): tf.Tensor => groupNormSwishFused(a as tf.Tensor4D, b as tf.Tensor1D, d as tf.Tensor1D, { groups: g, eps: EPS, swish: sw });
      const run = async (f: typeof comp): Promise<Float32Array[]> => {
        const outs = tf.tidy(() => [f(x, gamma, beta), ...tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(f(a, b, d), r)))([x, gamma, beta])]);
        const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
        tf.dispose(outs);
        return data;
      };
      const want = await run(comp);
      const got = await run(fused);
      const tol = override({ rtol: 1e-4, atol: 1e-4 }, 'two float32 evaluations of GroupNorm: sums over up to 2048 values in different orders, parameter gradients summed over up to 512 positions');
      ['y', '∂/∂x', '∂/∂γ', '∂/∂β'].forEach((what, i) => expect(got[i]).toBeCloseWithin(want[i], tol, { what: `${what} at [${shape.join(',')}], swish ${sw}` }));
      tf.dispose([x, gamma, beta, r]);
    }
  });

  it('on wasm the SIMD module and the JavaScript loops (the cpu kernels) compute the same values  [training.fused.simdEqLoops]', async (ctx) => {
    if (tf.getBackend() !== 'wasm') ctx.skip(`the SIMD module runs on the wasm backend only; ${tf.getBackend()} runs the JavaScript loops (checked directly by the properties above)`);
    const rng = new Rng(3);
    for (const [shape, g, sw] of [
      [[2, 5, 3, 64], 32, true],
      [[1, 4, 4, 12], 3, false],
      [[3, 8, 8, 32], 32, true],
    ] as Array<[number[], number, boolean]>) {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from(rng.normals(size), (v) => 3 * v - 1);
      const gamma = Float32Array.from(rng.normals(shape[3]));
      const beta = Float32Array.from(rng.normals(shape[3]));
      const dy = Float32Array.from(rng.normals(size));
      const attrs = { groups: g, eps: EPS, swish: sw };
      const y = new Float32Array(size);
      const [dx, dg, db] = [new Float32Array(size), new Float32Array(shape[3]), new Float32Array(shape[3])];
      groupNormSwishForward(x, shape, gamma, beta, attrs, y);
      groupNormSwishBackward(dy, x, shape, gamma, beta, attrs, dx, dg, db);
      const tx = tf.tensor(x, shape);
      const tg = tf.tensor1d(gamma);
      const tb = tf.tensor1d(beta);
      const tdy = tf.tensor(dy, shape);
      const sy = tf.engine().runKernel(GROUP_NORM_SWISH, { x: tx, gamma: tg, beta: tb }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
      const sg = tf.engine().runKernel(GROUP_NORM_SWISH_GRAD, { dy: tdy, x: tx, gamma: tg, beta: tb }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      const [gy, gdx, gdg, gdb] = await Promise.all([sy, ...sg].map((t) => t.data() as Promise<Float32Array>));
      const what = `[${shape.join(',')}], G ${g}, swish ${sw}`;
      expect(gy).toBeCloseWithin(y, IMPL, { shape, what: `y, ${what}` });
      expect(gdx).toBeCloseWithin(dx, IMPL, { shape, what: `dx, ${what}` });
      expect(gdg).toBeCloseWithin(dg, override({ rtol: 1e-5, atol: 2e-4 }, 'γ-gradient sums over up to 128 positions: float32 per-example sums in the SIMD module'), { what: `dγ, ${what}` });
      expect(gdb).toBeCloseWithin(db, override({ rtol: 1e-5, atol: 2e-4 }, 'β-gradient sums over up to 128 positions: float32 per-example sums in the SIMD module'), { what: `dβ, ${what}` });
      tf.dispose([tx, tg, tb, tdy, sy, ...sg]);
    }
  });

  it('forward and backward leave no tensor and no backend buffer behind (scratch memory is freed)  [training.fused.noLeak]', async (ctx) => {
    skipWithoutKernel(ctx);
    const x = tf.randomNormal([2, 8, 8, 64], 0, 1, 'float32', 5) as tf.Tensor4D;
    const gamma = tf.ones([64]) as tf.Tensor1D;
    const beta = tf.zeros([64]) as tf.Tensor1D;
    const step = (): void => {
      const gs = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(groupNormSwishFused(a as tf.Tensor4D, b as tf.Tensor1D, d as tf.Tensor1D, { groups: 32, eps: EPS, swish: true })))([x, gamma, beta]));
      tf.dispose(gs);
    };
    step();
    const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
    for (let i = 0; i < 20; i++) step();
    expect({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() }).toEqual(before);
    tf.dispose([x, gamma, beta]);
  });

  it('the committed kernel modules are what tools/build-kernels.sh builds from their C sources, and own no memory in the tfjs heap  [training.fused.wasmModuleCurrent]', (ctx) => {
    const modules: Record<string, string[]> = {
      groupnorm: ['gn_backward', 'gn_forward', 'gn_scratch_doubles'],
      attention: ['attn_backward', 'attn_forward', 'attn_scratch_floats'],
      convgrad: ['conv2d_filter_grad'],
      conv: ['conv2d_forward', 'conv2d_scratch_floats'],
    };
    const committed = new Map(Object.keys(modules).map((m) => [m, readFileSync(new URL(`../../reference/nn/kernels/${m}.wasm`, import.meta.url))]));
    for (const [name, exports] of Object.entries(modules)) {
      const bytes = committed.get(name)!;
      const mod = new WebAssembly.Module(bytes);
      expect(WebAssembly.Module.imports(mod), name).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      expect(WebAssembly.Module.exports(mod).map((e) => e.name).sort(), name).toEqual(exports);
      // Section ids of the binary (after the 8-byte header): 11 is the data section, which would be copied into the heap.
      const ids: number[] = [];
      for (let i = 8; i < bytes.length; ) {
        ids.push(bytes[i]);
        let size = 0;
        let shift = 0;
        let j = i + 1;
        for (;;) {
          const b = bytes[j++];
          size |= (b & 0x7f) << shift;
          shift += 7;
          if ((b & 0x80) === 0) break;
        }
        i = j + size;
      }
      expect(ids, name).not.toContain(11);
    }
    need(ctx, requireCommands({ clang: 'clang', 'wasm-ld': 'lld', 'wasm-objdump': 'wabt' }));
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-kernels-'));
    try {
      const r = spawnSync('bash', [new URL('../../tools/build-kernels.sh', import.meta.url).pathname, dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      for (const [name, bytes] of committed) {
        expect(Buffer.compare(readFileSync(join(dir, `${name}.wasm`)), bytes), `${name}.wasm: rebuild reference/nn/kernels with tools/build-kernels.sh and commit the result`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the fused attention computes softmax(α q kᵀ) v per example, and its gradient equals float64 finite differences  [training.fused.attentionEqFiniteDiff]', async (ctx) => {
    if (!fusedAttentionAvailable()) ctx.skip(`the fused attention runs on wasm and cpu; ${tf.getBackend()} uses the composite products`);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.double({ min: 0.2, max: 1.5, noNaN: true }), fc.integer(), async (n, p, c, scale, seed) => {
        const rng = new Rng(seed | 0);
        const [q, k, v] = [0, 1, 2].map(() => t64([n, p, c], normalsF(rng, n * p * c, 1.5)));
        const r = normalsF(rng, n * p * c);
        const want = attention64(q, k, v, scale);
        const ts = [q, k, v].map((t) => tf.tensor3d(Float32Array.from(t.data), [n, p, c]));
        const y = attentionFused(ts[0], ts[1], ts[2], scale);
        const f = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(attentionFused(a as tf.Tensor3D, b as tf.Tensor3D, d as tf.Tensor3D, scale), tf.tensor(Float32Array.from(r), [n, p, c]))));
        const gs = tf.tidy(() => f(ts));
        const [got, ...grads] = await Promise.all([y, ...gs].map((t) => t.data() as Promise<Float32Array>));
        tf.dispose([...ts, y, ...gs]);
        const what = `n ${n}, P ${p}, C ${c}, α ${scale}`;
        expect(got).toBeCloseWithin(want.data, ATT, { shape: [n, p, c], what: `o, ${what}` });
        const fd = finiteDiff(([a, b, d]) => dot64(attention64(a, b, d, scale), r), [q, k, v]);
        ['∂/∂q', '∂/∂k', '∂/∂v'].forEach((name, i) => expect(grads[i]).toBeCloseWithin(fd[i], GRAD, { shape: [n, p, c], what: `${name}, ${what}` }));
      }),
      { numRuns: 30 },
    );
  });

  it('at the UNet\'s attention shapes the fused attention and its gradient agree with the composite products, and leave nothing behind  [training.fused.attentionEqComposite]', async (ctx) => {
    if (!fusedAttentionAvailable()) ctx.skip(`the fused attention runs on wasm and cpu; ${tf.getBackend()} uses the composite products`);
    const rng = new Rng(21);
    for (const shape of [
      [2, 64, 32],
      [2, 16, 64],
      [1, 256, 64],
    ] as Array<[number, number, number]>) {
      const size = shape.reduce((a, b) => a * b, 1);
      const [q, k, v, r] = [0, 1, 2, 3].map(() => tf.tensor3d(Float32Array.from(rng.normals(size)), shape));
      const scale = 1 / Math.sqrt(shape[2]);
      const run = async (f: (a: tf.Tensor3D, b: tf.Tensor3D, d: tf.Tensor3D) => tf.Tensor): Promise<Float32Array[]> => {
        const outs = tf.tidy(() => [f(q, k, v), ...tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor3D, b as tf.Tensor3D, d as tf.Tensor3D), r)))([q, k, v])]);
        const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
        tf.dispose(outs);
        return data;
      };
      // The composite products, forced: dotProductAttention itself takes the fused kernel where it is registered.
      const composite = (a: tf.Tensor3D, b: tf.Tensor3D, d: tf.Tensor3D): tf.Tensor => tf.matMul(tf.softmax(tf.matMul(a, b.transpose([0, 2, 1])).mul(scale)), d);
      const want = await run(composite);
      const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
      const got = await run((a, b, d) => attentionFused(a, b, d, scale));
      const viaLayer = await run((a, b, d) => dotProductAttention(a, b, d));
      expect({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() }).toEqual(before);
      const tol = override({ rtol: 1e-4, atol: 1e-5 }, 'two float32 evaluations of attention: sums over up to 256 positions in different orders, exp approximated to 2e-7');
      ['o', '∂/∂q', '∂/∂k', '∂/∂v'].forEach((what, i) => {
        expect(got[i]).toBeCloseWithin(want[i], tol, { what: `${what} at [${shape.join(',')}]` });
        expect(viaLayer[i]).toBeCloseWithin(got[i], override({ rtol: 0, atol: 0 }, 'dotProductAttention is the fused kernel where it is registered: the same values bit for bit'), { what: `layer ${what}` });
      });
      tf.dispose([q, k, v, r]);
    }
  });

  it('on wasm the attention SIMD module and the JavaScript loops (the cpu kernels) compute the same values  [training.fused.attentionSimdEqLoops]', async (ctx) => {
    if (tf.getBackend() !== 'wasm') ctx.skip(`the SIMD module runs on the wasm backend only; ${tf.getBackend()} runs the JavaScript loops (checked directly by the properties above)`);
    const rng = new Rng(8);
    for (const [n, p, c] of [
      [2, 64, 32],
      [1, 7, 5],
      [3, 16, 64],
      // past one block of 64 queries, with a remainder of queries, of the 4 × 8 register tiles, and of channels
      [2, 70, 13],
      [1, 130, 9],
    ]) {
      const size = n * p * c;
      const [q, k, v, dy] = [0, 1, 2, 3].map(() => Float32Array.from(rng.normals(size)));
      const scale = 1 / Math.sqrt(c);
      const o = new Float32Array(size);
      const [dq, dk, dv] = [0, 1, 2].map(() => new Float32Array(size));
      attentionForward(q, k, v, n, p, c, scale, o);
      attentionBackward(dy, q, k, v, n, p, c, scale, dq, dk, dv);
      const [tq, tk, tv, tdy] = [q, k, v, dy].map((a) => tf.tensor3d(a, [n, p, c]));
      const so = tf.engine().runKernel(ATTENTION, { q: tq, k: tk, v: tv }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const sg = tf.engine().runKernel(ATTENTION_GRAD, { dy: tdy, q: tq, k: tk, v: tv }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      const got = await Promise.all([so, ...sg].map((t) => t.data() as Promise<Float32Array>));
      [o, dq, dk, dv].forEach((want, i) => expect(got[i]).toBeCloseWithin(want, IMPL, { shape: [n, p, c], what: `${['o', 'dq', 'dk', 'dv'][i]} at [${n},${p},${c}]` }));
      tf.dispose([tq, tk, tv, tdy, so, ...sg]);
    }
  });
  // The filter gradient: sums over the N·H_out·W_out output pixels of products of O(1) normals.
  const FILTER = override({ rtol: 1e-5, atol: 2e-4 }, 'float32 sums over up to 2 048 pixels (tiles of ~256 added into dw) vs float64 sums: rounding grows with the partial sums (≈ √P)');

  /** Filter gradients of conv2d(x, w, strides, pad) with channel counts that reach the 4 × 8 SIMD blocks and every remainder. */
  const filterCase = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 1, max: 7 }),
    w: fc.integer({ min: 1, max: 7 }),
    cin: fc.constantFrom(1, 3, 4, 5, 8, 9),
    cout: fc.constantFrom(1, 3, 4, 7, 8, 12, 17),
    k: fc.constantFrom<[number, number]>([1, 1], [3, 3], [2, 3]),
    s: fc.constantFrom<[number, number]>([1, 1], [2, 2], [1, 2]),
    pad: fc.constantFrom<'same' | 'valid' | 'down'>('same', 'valid', 'down'),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  });

  it('the filter-gradient kernel equals float64 finite differences of the convolution for any stride, padding and channel count  [training.fused.filterGradEqFiniteDiff]', async (ctx) => {
    installGradients();
    if (!filterGradKernelAvailable()) ctx.skip(`the filter-gradient kernel runs on wasm and cpu; ${tf.getBackend()} uses the composite forward convolution (checked by [training.grad.conv2dEqFiniteDiff])`);
    await fc.assert(
      fc.asyncProperty(filterCase, async (c) => {
        const pad2 = c.pad === 'down' ? ([[0, 1], [0, 1]] as [[number, number], [number, number]]) : c.pad;
        const padTf = c.pad === 'down' ? ([[0, 0], [0, 1], [0, 1], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]) : c.pad;
        const [kh, kw] = c.k;
        if ((c.pad === 'valid' && (c.h < kh || c.w < kw)) || (c.pad === 'down' && (c.h + 1 < kh || c.w + 1 < kw))) return;
        const rng = new Rng(c.seed);
        const x = t64([c.n, c.h, c.w, c.cin], normalsF(rng, c.n * c.h * c.w * c.cin));
        const wt = t64([kh, kw, c.cin, c.cout], normalsF(rng, kh * kw * c.cin * c.cout));
        const y = conv2d64(x, wt, c.s, pad2);
        const r = normalsF(rng, y.data.length);
        const [, gw] = finiteDiff(([a, b]) => dot64(conv2d64(a, b, c.s, pad2), r), [x, wt]);
        const tx = tf.tensor4d(Float32Array.from(x.data), x.shape as [number, number, number, number]);
        const tdy = tf.tensor4d(Float32Array.from(r), y.shape as [number, number, number, number]);
        const g = conv2dFilterGrad(tx, tdy, [kh, kw, c.cin, c.cout], c.s, padTf);
        const got = (await g.data()) as Float32Array;
        tf.dispose([tx, tdy, g]);
        expect(got).toBeCloseWithin(gw, GRAD, { shape: wt.shape, what: `dw of x [${x.shape}], w [${wt.shape}], strides [${c.s}], pad ${c.pad}` });
      }),
      { numRuns: 40 },
    );
  });

  it('the filter-gradient kernel agrees with the composite forward convolution at the UNet\'s shapes, 1×1 products included, and leaves nothing behind  [training.fused.filterGradEqComposite]', async (ctx) => {
    installGradients();
    if (!filterGradKernelAvailable()) ctx.skip(`the filter-gradient kernel runs on wasm and cpu; ${tf.getBackend()} uses the composite forward convolution`);
    const rng = new Rng(31);
    const cases: Array<[number[], number[], number, 'same' | [[number, number], [number, number], [number, number], [number, number]]]> = [
      [[2, 16, 16, 32], [3, 3, 32, 32], 1, 'same'],
      [[2, 8, 8, 64], [3, 3, 64, 96], 1, 'same'],
      [[2, 16, 16, 32], [3, 3, 32, 32], 2, [[0, 0], [0, 1], [0, 1], [0, 0]]],
      [[2, 16, 16, 1], [3, 3, 1, 32], 1, 'same'],
      [[2, 16, 16, 32], [3, 3, 32, 1], 1, 'same'],
      [[1, 1, 512, 96], [1, 1, 96, 32], 1, 'same'],
    ];
    for (const [xs, fs, st, pad] of cases) {
      const x = tf.tensor4d(Float32Array.from(rng.normals(xs.reduce((a, b) => a * b, 1))), xs as [number, number, number, number]);
      const g = convGeometry(xs, fs, st, pad);
      const dy = tf.tensor4d(Float32Array.from(rng.normals(xs[0] * g.outHeight * g.outWidth * fs[3])), [xs[0], g.outHeight, g.outWidth, fs[3]]);
      const want = conv2dFilterGradComposite(x, dy, g, fs as [number, number, number, number]);
      const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
      const got = conv2dFilterGrad(x, dy, fs as [number, number, number, number], st, pad);
      const [a, b] = await Promise.all([got.data() as Promise<Float32Array>, want.data() as Promise<Float32Array>]);
      got.dispose();
      expect({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() }).toEqual(before);
      expect(a).toBeCloseWithin(b, FILTER, { shape: fs, what: `dw of x [${xs}], w [${fs}], stride ${st}` });
      tf.dispose([x, dy, want]);
    }
  });

  it('on wasm the filter-gradient SIMD module and the JavaScript loops (the cpu kernel, float64 sums) compute the same values  [training.fused.filterGradSimdEqLoops]', async (ctx) => {
    installGradients();
    if (tf.getBackend() !== 'wasm') ctx.skip(`the SIMD module runs on the wasm backend only; ${tf.getBackend()} runs the JavaScript loops or the composite (checked by the properties above)`);
    const rng = new Rng(33);
    const cases: Array<[number[], number[], FilterGradAttrs]> = [
      [[2, 16, 16, 32], [2, 16, 16, 64], { kh: 3, kw: 3, sh: 1, sw: 1, top: 1, left: 1 }],
      [[3, 9, 7, 13], [3, 5, 4, 11], { kh: 3, kw: 3, sh: 2, sw: 2, top: 0, left: 0 }],
      [[1, 1, 700, 96], [1, 1, 700, 40], { kh: 1, kw: 1, sh: 1, sw: 1, top: 0, left: 0 }],
      [[4, 4, 4, 128], [4, 4, 4, 8], { kh: 3, kw: 3, sh: 1, sw: 1, top: 1, left: 1 }],
    ];
    for (const [xs, ds, a] of cases) {
      const x = Float32Array.from(rng.normals(xs.reduce((p, q) => p * q, 1)));
      const dy = Float32Array.from(rng.normals(ds.reduce((p, q) => p * q, 1)));
      const want = new Float32Array(a.kh * a.kw * xs[3] * ds[3]);
      filterGradLoops(x, dy, xs, ds, a, want);
      const tx = tf.tensor(x, xs);
      const tdy = tf.tensor(dy, ds);
      const g = tf.engine().runKernel(CONV2D_FILTER_GRAD, { x: tx, dy: tdy }, a as unknown as tf.NamedAttrMap) as tf.Tensor;
      const got = (await g.data()) as Float32Array;
      tf.dispose([tx, tdy, g]);
      expect(got).toBeCloseWithin(want, FILTER, { shape: [a.kh, a.kw, xs[3], ds[3]], what: `x [${xs}], dy [${ds}], ${JSON.stringify(a)}` });
    }
  });

  it('the filter-gradient kernel names a wrong input or attribute in one line  [training.fused.filterGradRejects]', (ctx) => {
    installGradients();
    if (!filterGradKernelAvailable()) ctx.skip(`the filter-gradient kernel runs on wasm and cpu, not on ${tf.getBackend()}`);
    const x = tf.zeros([1, 4, 4, 2]);
    const dy = tf.zeros([2, 4, 4, 3]);
    const ok = tf.zeros([1, 4, 4, 3]);
    const attrs = { kh: 3, kw: 3, sh: 1, sw: 1, top: 1, left: 1 };
    expect(() => tf.engine().runKernel(CONV2D_FILTER_GRAD, { x, dy }, attrs)).toThrow(/DdpmConv2DFilterGrad: x and dy must be .* same N/);
    expect(() => tf.engine().runKernel(CONV2D_FILTER_GRAD, { x, dy: ok }, { ...attrs, sh: 0 })).toThrow(/attribute sh must be an integer ≥ 1, got 0/);
    tf.dispose([x, dy, ok]);
  });
  it('on wasm our convolution equals the float64 convolution for any stride, padding and channel count  [training.fused.convEqFloat64]', async (ctx) => {
    if (tf.getBackend() !== 'wasm') ctx.skip(`our convolution replaces the wasm backend's; ${tf.getBackend()} keeps its own Conv2D`);
    installConvKernel();
    await fc.assert(
      fc.asyncProperty(filterCase, async (c) => {
        const pad2 = c.pad === 'down' ? ([[0, 1], [0, 1]] as [[number, number], [number, number]]) : c.pad;
        const padTf = c.pad === 'down' ? ([[0, 0], [0, 1], [0, 1], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]) : c.pad;
        const [kh, kw] = c.k;
        if ((c.pad === 'valid' && (c.h < kh || c.w < kw)) || (c.pad === 'down' && (c.h + 1 < kh || c.w + 1 < kw))) return;
        const rng = new Rng(c.seed);
        const x = t64([c.n, c.h, c.w, c.cin], normalsF(rng, c.n * c.h * c.w * c.cin));
        const wt = t64([kh, kw, c.cin, c.cout], normalsF(rng, kh * kw * c.cin * c.cout));
        const want = conv2d64(x, wt, c.s, pad2);
        const tx = tf.tensor4d(Float32Array.from(x.data), x.shape as [number, number, number, number]);
        const tw = tf.tensor4d(Float32Array.from(wt.data), wt.shape as [number, number, number, number]);
        const y = tf.conv2d(tx, tw, c.s, padTf);
        const got = (await y.data()) as Float32Array;
        tf.dispose([tx, tw, y]);
        expect(y.shape).toEqual(want.shape);
        expect(got).toBeCloseWithin(want.data, GRAD, { shape: want.shape, what: `conv2d of x [${x.shape}], w [${wt.shape}], strides [${c.s}], pad ${c.pad}` });
      }),
      { numRuns: 60 },
    );
  });

  it('on wasm our convolution computes the same sums as tfjs-backend-wasm\'s (XNNPACK) at the UNets\' shapes, and leaves nothing behind  [training.fused.convEqTfjs]', async (ctx) => {
    if (tf.getBackend() !== 'wasm') ctx.skip(`our convolution replaces the wasm backend's; ${tf.getBackend()} keeps its own Conv2D`);
    installConvKernel();
    const rng = new Rng(41);
    const cases: Array<[number[], number[], number, 'same' | [[number, number], [number, number], [number, number], [number, number]]]> = [
      [[2, 16, 16, 32], [3, 3, 32, 32], 1, 'same'],
      [[2, 8, 8, 64], [3, 3, 64, 96], 1, 'same'],
      [[1, 8, 8, 256], [3, 3, 256, 256], 1, 'same'],
      [[2, 16, 16, 32], [3, 3, 32, 32], 2, [[0, 0], [0, 1], [0, 1], [0, 0]]],
      [[2, 16, 16, 1], [3, 3, 1, 32], 1, 'same'],
      [[2, 16, 16, 32], [3, 3, 32, 1], 1, 'same'],
      [[2, 9, 7, 3], [3, 3, 3, 13], 1, 'same'],
    ];
    for (const [xs, fs, st, pad] of cases) {
      const x = tf.tensor4d(Float32Array.from(rng.normals(xs.reduce((a, b) => a * b, 1))), xs as [number, number, number, number]);
      const w = tf.tensor4d(Float32Array.from(rng.normals(fs.reduce((a, b) => a * b, 1))), fs as [number, number, number, number]);
      const want = withTfjsConv(() => tf.conv2d(x, w, st, pad));
      const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
      const got = tf.conv2d(x, w, st, pad);
      const [a, b] = await Promise.all([got.data() as Promise<Float32Array>, want.data() as Promise<Float32Array>]);
      got.dispose();
      expect({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() }).toEqual(before);
      expect(a).toBeCloseWithin(b, IMPL, { shape: want.shape, what: `conv2d of x [${xs}], w [${fs}], stride ${st}` });
      tf.dispose([x, w, want]);
    }
  });
  it('a convolution whose input is empty after cropping (a strided input gradient) gives the padding\'s zeros, and so does its filter gradient  [training.fused.convEmptyInputZeros]', async (ctx) => {
    installGradients();
    if (!filterGradKernelAvailable()) ctx.skip(`the kernels run on wasm and cpu, not on ${tf.getBackend()}`);
    installConvKernel();
    // Found by [training.grad.conv2dEqFiniteDiff] under FC_SEED=-1108481340: x [1,3,1,1], a 2×2 filter, strides 2, padding
    // left 2: the input gradient convolves a δ cropped to width 0. XNNPACK refuses the setup and leaves its output unwritten.
    const x = tf.zeros([1, 3, 0, 1]) as tf.Tensor4D;
    const w = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
    const y = tf.conv2d(x, w, 1, [[0, 0], [0, 1], [2, 0], [0, 0]]);
    expect(y.shape).toEqual([1, 3, 1, 1]);
    expect(Array.from(await y.data())).toEqual([0, 0, 0]);
    const dy = tf.ones([1, 3, 0, 1]) as tf.Tensor4D;
    const g = conv2dFilterGrad(x, dy, [2, 2, 1, 1], 1, 'same');
    expect(Array.from(await g.data())).toEqual([0, 0, 0, 0]);
    tf.dispose([x, w, y, dy, g]);
  });
});
