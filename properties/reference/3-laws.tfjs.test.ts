import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { DDPM_LAWS, LAW_TOL, type Law } from '../../src/conformance/ddpmLaws.ts';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { scaled, TOL } from '../../src/numeric/tolerance.ts';
import { expectWithin, tensor } from './agree.ts';
import { fcSeed } from '../support/seed.ts';
import {
  GaussianDiffusion,
  calcBpdLoop,
  improvedBetaSchedule,
  pSample,
  pSampleLoopProgressive,
  respaceBetas,
  spaceTimesteps,
  tinyModel,
  trainingLosses,
  type DenoiseModel,
} from '../../reference/index.ts';

const ref = referenceOps();

/**
 * The round trip x_t → x_{t+1} → x_t is two float32 steps, each with the cancellation the law's scale measures;
 * with the float32 default (16 ulps of the terms) it misses by up to 1.5× on a few seeds (t = 0 of quad T = 50).
 */
const ROUND_TRIP = scaled(LAW_TOL.float32, 4, 'the law composes two float32 DDIM steps (reverse, then forward), each erring by the float32 default');

function lawTolerance(law: Law) {
  return law.id === 'ddpm.ops.ddimReverseInvertsDdim' ? ROUND_TRIP : LAW_TOL.float32;
}

describe('4.9 The laws of the diffusion model hold on the reference', () => {
  for (const law of DDPM_LAWS) {
    it(`${law.claim}, on the tfjs reference  [reference.laws.${law.id.split('.').pop()}]`, async () => {
      const r = await law.run(ref, { tol: lawTolerance(law), seed: fcSeed() });
      expect(r.verdict, `${r.id}: ${r.claim}\n${r.detail}`).toBe('pass');
      expect(r.comparisons).toBeGreaterThan(0);
    });
  }
});

/** A TinyModel from plain arrays (weights as float32 tensors; the caller disposes them). */
function tiny(W: number[][], bias: number[], tw: number[]): { model: DenoiseModel; params: tf.Tensor[] } {
  const p = { W: tf.tensor2d(W), bias: tf.tensor1d(bias), tw: tf.tensor1d(tw) };
  return { model: tinyModel(p), params: [p.W, p.bias, p.tw] };
}

describe('4.10 Laws of respacing, timestep handling, losses and loops on the reference', () => {
  it('a respaced schedule keeps ᾱ at the kept timesteps: Π_{j≤i}(1 − β′_j) = ᾱ_{map[i]}  [reference.respace.keepsAlphaBar]', () =>
    fc.assert(
      fc.property(
        // T ∈ [2, 1000] and 1–5 sections: the published uses (ddim50 of 1000, "250" of 4000) and odd splits.
        fc.integer({ min: 2, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }),
        (T, counts) => {
          const sizes = counts.map((_, i) => Math.floor(T / counts.length) + (i < T % counts.length ? 1 : 0));
          fc.pre(counts.every((c, i) => c <= sizes[i]));
          const betas = improvedBetaSchedule('cosine', T);
          const kept = spaceTimesteps(T, counts);
          expect(kept).toEqual([...kept].sort((a, b) => a - b));
          expect(new Set(kept).size).toBe(kept.length);
          expect(kept.every((k) => Number.isInteger(k) && k >= 0 && k < T)).toBe(true);
          const r = respaceBetas(betas, kept);
          expect(r.timestepMap).toEqual(kept);
          let ab = 1;
          const acc: number[] = [];
          for (let i = 0; i < T; i++) acc.push((ab *= 1 - betas[i]));
          let p = 1;
          const got = Array.from(r.betas, (b) => (p *= 1 - b));
          // 1 − β′ recovers each ratio r = ᾱ_k/ᾱ_prev only to ulp(1) absolute, i.e. relative 2⁻⁵³/r; the errors add along the product.
          let rel = 0;
          const bound = kept.map((k, i) => {
            rel += (4 * 2 ** -53) / (1 - r.betas[i]) + 4 * 2 ** -53;
            return acc[k] * rel + 1e-300;
          });
          expectWithin('Π(1 − β′)', tensor([got.length], got), tensor([got.length], kept.map((k) => acc[k])), bound, 'float64: each factor 1 − (1 − r) is r to within ulp(1), relative 2⁻⁵³/r, accumulated along the product');
        },
      ),
      { numRuns: 50 },
    ));

  it('the model sees t, t·1000/T when timesteps are rescaled, and the original timestep (×1000/T₀) after respacing  [reference.model.timestepsItSees]', () => {
    const betas = improvedBetaSchedule('cosine', 20);
    const cases: Array<[GaussianDiffusion, number[]]> = [
      [new GaussianDiffusion({ betas }), [0, 7, 19]],
      [new GaussianDiffusion({ betas, rescaleTimesteps: true }), [0, 350, 950]],
      [new GaussianDiffusion({ betas: betas.slice(0, 3), timestepMap: [0, 5, 9] }), [0, 5, 9]],
      [new GaussianDiffusion({ betas: betas.slice(0, 3), timestepMap: [0, 5, 9], rescaleTimesteps: true, originalNumTimesteps: 20 }), [0, 250, 450]],
    ];
    for (const [d, want] of cases) {
      expect(Array.from(d.modelTimesteps(d.T === 3 ? [0, 1, 2] : [0, 7, 19]))).toEqual(want);
      d.dispose();
    }
  });

  it('the vb term of the hybrid loss trains only the variance: its gradient on the mean rows of the TinyModel is exactly 0  [reference.losses.vbDetachesMean]', async () => {
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('cosine', 20), modelVarType: 'LEARNED_RANGE', lossType: 'MSE' });
    const x0 = tf.randomUniform([2, 3, 3, 2], -1, 1, 'float32', 1);
    const noise = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 2);
    const W = tf.randomNormal([4, 2], 0, 0.5, 'float32', 3);
    const bias = tf.randomNormal([4], 0, 0.5, 'float32', 4);
    const tw = tf.randomNormal([4], 0, 0.5, 'float32', 5);
    const g = tf.grads((w: tf.Tensor, b: tf.Tensor, v: tf.Tensor) => {
      const r = trainingLosses(d, tinyModel({ W: w as tf.Tensor2D, bias: b as tf.Tensor1D, tw: v as tf.Tensor1D }), x0, [5, 0], noise);
      return tf.sum(r.vb!);
    })([W, bias, tw]);
    const [gw, gb, gt] = await Promise.all(g.map((x) => x.data()));
    expect(Array.from(gw.slice(0, 4))).toEqual([0, 0, 0, 0]); // W[:2] (rows of the mean channels)
    expect(Array.from(gb.slice(0, 2))).toEqual([0, 0]);
    expect(Array.from(gt.slice(0, 2))).toEqual([0, 0]);
    expect(Array.from(gw.slice(4)).some((v) => v !== 0), 'the variance rows do get a gradient').toBe(true);
    tf.dispose([x0, noise, W, bias, tw, ...g]);
    d.dispose();
  });

  it('the ancestral loop equals its steps chained one by one, and its last step adds no noise  [reference.sampling.loopEqChainedSteps]', async () => {
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('cosine', 8), modelVarType: 'FIXED_LARGE' });
    const { model, params } = tiny([[0.3, -0.2], [0.1, 0.4]], [0.05, -0.1], [0.2, 0.3]);
    const xT = tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', 7);
    const noise = tf.randomNormal([8, 2, 2, 2, 2], 0, 1, 'float32', 8);
    const noLastNoise = tf.tidy(() => tf.concat([noise.slice([0], [7]), tf.zeros([1, 2, 2, 2, 2])]));
    const run = async (n: tf.Tensor) => {
      const out: number[][] = [];
      for await (const s of pSampleLoopProgressive(d, model, xT, { clipDenoised: true, noise: n })) out.push(Array.from(await s.sample.data()));
      return out;
    };
    const loop = await run(noise);
    let x = xT.clone();
    for (let i = 0; i < 8; i++) {
      const n = tf.tidy(() => noise.gather(i));
      const s = pSample(d, model, x, [7 - i, 7 - i], n, { clipDenoised: true });
      expect(loop[i], `step ${i}`).toEqual(Array.from(await s.sample.data()));
      tf.dispose([x, n, s.predXstart]);
      x = s.sample;
    }
    x.dispose();
    expect((await run(noLastNoise))[7], 'the t = 0 draw is masked').toEqual(loop[7]);
    tf.dispose([xT, noise, noLastNoise, ...params]);
    d.dispose();
  });

  it('the bits/dim loop gives the same terms whether its steps run one by one or as one batch, and total = Σ vb + prior  [reference.bpd.batchingInvariant]', async () => {
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('cosine', 6), modelVarType: 'FIXED_SMALL' });
    const { model, params } = tiny([[0.3, -0.2], [0.1, 0.4]], [0.05, -0.1], [0.2, 0.3]);
    const x0 = tf.tidy(() => tf.randomUniform([2, 2, 2, 2], -1, 1, 'float32', 3).mul(127.5).round().div(127.5));
    const noise = tf.randomNormal([6, 2, 2, 2, 2], 0, 1, 'float32', 4);
    const one = await calcBpdLoop(d, model, x0, { clipDenoised: true, noise });
    const all = await calcBpdLoop(d, model, x0, { clipDenoised: true, noise, stepsPerBatch: 4 });
    for (const k of ['vb', 'xstartMse', 'mse', 'priorBpd', 'totalBpd'] as const) {
      expect(Array.from(await all[k].data()), k).toBeCloseWithin(Array.from(await one[k].data()), TOL.float32);
    }
    const vb = await one.vb.array();
    const prior = await one.priorBpd.data();
    expect(Array.from(await one.totalBpd.data())).toBeCloseWithin(vb.map((row, b) => row.reduce((s, v) => s + v, 0) + prior[b]), TOL.float32);
    tf.dispose([...Object.values(one), ...Object.values(all), x0, noise, ...params]);
    d.dispose();
  });
});
