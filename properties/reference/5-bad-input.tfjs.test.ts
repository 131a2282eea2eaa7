import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import {
  GaussianDiffusion,
  calcBpdLoop,
  computeBuffers,
  ddimSample,
  discretizedGaussianLogLikelihood,
  hoBetaSchedule,
  improvedBetaSchedule,
  normalKl,
  pMeanVariance,
  pSampleLoopProgressive,
  predictXstartFromEps,
  qSample,
  respaceBetas,
  spaceTimesteps,
  timestepEmbedding,
  tinyModel,
  trainingLosses,
} from '../../reference/index.ts';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { OpError } from '../../src/conformance/ops.ts';

const betas = improvedBetaSchedule('cosine', 20);

/** Run `f` with a fresh diffusion and tensors, disposing everything. */
function withDiffusion(opts: Partial<ConstructorParameters<typeof GaussianDiffusion>[0]>, f: (d: GaussianDiffusion) => void): void {
  const d = new GaussianDiffusion({ betas, ...opts });
  try {
    tf.tidy(() => f(d));
  } finally {
    d.dispose();
  }
}

describe('4.12 Bad input: errors name the function, the argument and what was expected', () => {
  it('timesteps outside {0, …, T−1}, non-integer or of the wrong count are refused, naming t and the range  [reference.badInput.timesteps]', () =>
    fc.assert(
      fc.property(
        // T ∈ [2, 1000] (the admissible lengths); a bad t: below 0, at or past T, or fractional (inside the range).
        fc.integer({ min: 2, max: 1000 }),
        fc.oneof(
          fc.tuple(fc.constant('below 0' as const), fc.integer({ min: 1, max: 1000 })),
          fc.tuple(fc.constant('past T−1' as const), fc.integer({ min: 0, max: 1000 })),
          fc.tuple(fc.constant('fractional' as const), fc.double({ min: 0.01, max: 0.99, noNaN: true })),
        ),
        (T, [kind, v]) => {
          const d = new GaussianDiffusion({ betas: hoBetaSchedule('linear', 1e-4, 0.02, T) });
          try {
            const t = kind === 'below 0' ? -v : kind === 'past T−1' ? T + v : Math.min(T - 2, 0) + v;
            const x = tf.zeros([2, 1, 1, 1]);
            expect(() => qSample(d, x, [0, t], x)).toThrowError(`qSample: t[1] must be an integer in {0, …, ${T - 1}} (0-based, T = ${T}), got ${t}`);
            expect(() => qSample(d, x, [0], x)).toThrowError('qSample: t must have one timestep per batch element (2), got 1');
            x.dispose();
          } finally {
            d.dispose();
          }
        },
      ),
      { numRuns: 30 },
    ));

  it('shape mismatches are refused with both shapes  [reference.badInput.shapes]', () => {
    withDiffusion({}, (d) => {
      expect(() => qSample(d, tf.zeros([2, 3]), [0, 1], tf.zeros([2, 4]))).toThrowError('qSample: x_start and noise must have the same shape, got [2,3] and [2,4]');
      expect(() => predictXstartFromEps(d, tf.zeros([1, 2, 2, 1]), [0], tf.zeros([1, 2, 2, 2]))).toThrowError(
        'predictXstartFromEps: x_t and eps must have the same shape, got [1,2,2,1] and [1,2,2,2]',
      );
      expect(() => discretizedGaussianLogLikelihood(tf.zeros([3]), tf.zeros([3]), tf.zeros([4]))).toThrowError(
        'discretizedGaussianLogLikelihood: x and log_scales must have the same shape, got [3] and [4]',
      );
      expect(() => normalKl(tf.zeros([3]), 0, tf.zeros([4]), 0)).toThrowError('normalKl: mean2 of shape [4] does not broadcast with mean1 of shape [3]');
    });
    withDiffusion({ modelVarType: 'LEARNED' }, (d) => {
      // A learned-variance model must output 2C channels.
      const model = tinyModel({ W: tf.zeros([2, 2]) as tf.Tensor2D, bias: tf.zeros([2]) as tf.Tensor1D, tw: tf.zeros([2]) as tf.Tensor1D });
      expect(() => pMeanVariance(d, model, tf.zeros([1, 2, 2, 2]), [3], { clipDenoised: true })).toThrowError(
        'pMeanVariance: the model output must have shape [1,2,2,4] (LEARNED: 4 channels last for x with 2), got [1,2,2,2]',
      );
    });
  });

  it('unknown mean, variance and loss types, bad betas and bad options are refused, naming the choices  [reference.badInput.configuration]', () => {
    expect(() => new GaussianDiffusion({ betas, modelMeanType: 'EPS' as never })).toThrowError(
      'GaussianDiffusion: modelMeanType must be one of EPSILON, START_X, PREVIOUS_X, got "EPS"',
    );
    expect(() => new GaussianDiffusion({ betas, modelVarType: 'LARGE' as never })).toThrowError(
      'GaussianDiffusion: modelVarType must be one of FIXED_SMALL, FIXED_LARGE, LEARNED, LEARNED_RANGE, got "LARGE"',
    );
    expect(() => new GaussianDiffusion({ betas, lossType: 'L1' as never })).toThrowError('GaussianDiffusion: lossType must be one of MSE, RESCALED_MSE, KL, RESCALED_KL, got "L1"');
    expect(() => computeBuffers([0.1, 1.5, 0.2])).toThrowError('computeBuffers: betas[1] must be in (0, 1], got 1.5');
    expect(() => computeBuffers([0.1, 0])).toThrowError('computeBuffers: betas[1] must be in (0, 1], got 0');
    expect(() => computeBuffers([0.1])).toThrowError('computeBuffers: betas must have length T ≥ 2 (the clipped posterior log-variance uses β̃_1), got 1');
    expect(() => computeBuffers(improvedBetaSchedule('linear', 19))).toThrowError(/computeBuffers: betas\[18\] must be in \(0, 1\], got 1\.05/);
    expect(() => hoBetaSchedule('cubic', 1e-4, 0.02, 10)).toThrowError('hoBetaSchedule: name must be one of quad, linear, warmup10, warmup50, const, jsd, got "cubic"');
    expect(() => timestepEmbedding([1, 2], 3, 'ho')).toThrowError("timestepEmbedding: dim must be 1 or ≥ 4 for Ho's embedding (it divides ln(10000) by ⌊dim/2⌋ − 1, which is 0 for dim = 3)");
    expect(() => timestepEmbedding([1, 2], 0)).toThrowError('timestepEmbedding: dim must be a positive integer, got 0');
    expect(() => spaceTimesteps(1000, 'ddim999')).toThrowError('spaceTimesteps: section_counts "ddim999": no integer stride gives exactly 999 of 1000 timesteps');
    expect(() => spaceTimesteps(10, '20')).toThrowError('spaceTimesteps: section 0 has 10 steps and cannot be divided into 20');
    expect(() => respaceBetas(betas, [0, 20])).toThrowError('respaceBetas: use_timesteps must be integers in {0, …, 19}, got 20');
    withDiffusion({}, (d) => {
      const x = tf.zeros([1, 1, 1, 1]);
      const model = tinyModel({ W: tf.zeros([1, 1]) as tf.Tensor2D, bias: tf.zeros([1]) as tf.Tensor1D, tw: tf.zeros([1]) as tf.Tensor1D });
      expect(() => ddimSample(d, model, x, [3], x, { clipDenoised: true, eta: -0.5 })).toThrowError('ddimSample: eta must be ≥ 0, got -0.5');
      expect(() => ddimSample(d, model, x, [3], null, { clipDenoised: true, eta: 1 })).toThrowError('ddimSample: noise must be given when eta ≠ 0 (got eta = 1)');
      expect(() => pMeanVariance(d, model, x, [3], { clipDenoised: 'yes' as never })).toThrowError('pMeanVariance: clipDenoised must be a boolean, got yes');
      expect(() => qSample(d, tf.zeros([1, 2], 'int32'), [0], tf.zeros([1, 2]))).toThrowError('qSample: x_start must have dtype float32, got int32');
      expect(() => trainingLosses(d, model, tf.scalar(1), [0], tf.scalar(1))).toThrowError('trainingLosses: x_start must have rank ≥ 2 (batch first), got shape []');
    });
  });

  it('non-finite inputs are refused before any computation: by the loops, and by every operation of the implementation  [reference.badInput.nonFinite]', async () => {
    const d = new GaussianDiffusion({ betas });
    const W = tf.zeros([1, 1]) as tf.Tensor2D;
    const bias = tf.zeros([1]) as tf.Tensor1D;
    const tw = tf.zeros([1]) as tf.Tensor1D;
    const model = tinyModel({ W, bias, tw });
    const x = tf.tensor4d([0, NaN], [2, 1, 1, 1]);
    const loop = pSampleLoopProgressive(d, model, x, { clipDenoised: true, noise: () => tf.zeros([2, 1, 1, 1]) });
    await expect(loop.next()).rejects.toThrowError('pSampleLoopProgressive: x_T must be finite everywhere, but it contains NaN or ±∞');
    await expect(calcBpdLoop(d, model, x, { clipDenoised: true, noise: () => tf.zeros([2, 1, 1, 1]) })).rejects.toThrowError(
      'calcBpdLoop: x_start must be finite everywhere, but it contains NaN or ±∞',
    );
    tf.dispose([x, W, bias, tw]);
    d.dispose();
    const ops = referenceOps();
    const t = (data: number[], shape: number[]) => ({ shape, data: Float64Array.from(data) });
    const b = t(Array.from(betas), [20]);
    await expect(ops.q_sample!({ betas: b }, t([0, Infinity], [2, 1, 1, 1]), t([0, 1], [2]), t([0, 0], [2, 1, 1, 1]))).rejects.toThrowError(
      new OpError('q_sample: x_start must be finite everywhere, but element 1 is Infinity'),
    );
    await expect(ops.normal_kl!(t([0], [1]), t([NaN], [1]), t([0], [1]), t([0], [1]))).rejects.toThrowError('normal_kl: logvar1 must be finite everywhere, but element 0 is NaN');
    await expect(ops.q_sample!({ betas: b }, t([0, 0], [2, 1, 1, 1]), t([0, 20], [2]), t([0, 0], [2, 1, 1, 1]))).rejects.toThrowError(
      'qSample: t[1] must be an integer in {0, …, 19} (0-based, T = 20), got 20',
    );
  });
});
