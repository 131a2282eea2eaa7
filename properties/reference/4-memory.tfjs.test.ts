import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import {
  GaussianDiffusion,
  NonFiniteError,
  calcBpdLoop,
  ddimReverseLoopProgressive,
  ddimSampleLoopProgressive,
  finalSample,
  improvedBetaSchedule,
  pSampleLoopProgressive,
  tinyModel,
  type DenoiseModel,
} from '../../reference/index.ts';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from '../golden/replay.ts';

/** The TinyModel with fixed small weights (the caller disposes `params`). */
function tiny(): { model: DenoiseModel; params: tf.Tensor[] } {
  const W = tf.tensor2d([[0.3, -0.2], [0.1, 0.4]]);
  const bias = tf.tensor1d([0.05, -0.1]);
  const tw = tf.tensor1d([0.2, 0.3]);
  return { model: tinyModel({ W, bias, tw }), params: [W, bias, tw] };
}

describe('4.11 Memory: the reference leaves no tensors behind', () => {
  it('a 1000-step ancestral loop leaves tf.memory().numTensors unchanged, and so does stopping a loop early  [reference.memory.thousandStepLoopNoTensorLeak]', async () => {
    // Tiny tensors ([1, 2, 2, 2]) keep 1000 steps cheap on every backend; the loop's bookkeeping is what is measured.
    const { model, params } = tiny();
    const xT = tf.randomNormal([1, 2, 2, 2], 0, 1, 'float32', 1);
    const noise = (i: number) => tf.randomNormal([1, 2, 2, 2], 0, 1, 'float32', i);
    const n0 = tf.memory().numTensors;
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('linear', 1000), modelVarType: 'FIXED_LARGE' });
    let steps = 0;
    for await (const s of pSampleLoopProgressive(d, model, xT, { clipDenoised: true, noise })) {
      expect(s.t).toBe(999 - s.step);
      steps++;
    }
    expect(steps).toBe(1000);
    // Only the diffusion's float32 buffers (created on first use, kept until dispose) remain.
    const n1 = tf.memory().numTensors;
    expect(n1 - n0).toBeLessThanOrEqual(12);
    for await (const s of pSampleLoopProgressive(d, model, xT, { clipDenoised: true, noise })) if (s.step === 10) break;
    expect(tf.memory().numTensors, 'breaking out of a loop disposes its state').toBe(n1);
    d.dispose();
    expect(tf.memory().numTensors, 'after the loop and the diffusion: exactly the tensors of before').toBe(n0);
    tf.dispose([xT, ...params]);
  });

  it('the DDIM, reverse-DDIM and bits/dim loops and every operation of the tfjs implementation dispose what they create  [reference.memory.loopsAndOpsNoTensorLeak]', async () => {
    const before = tf.memory().numTensors;
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('cosine', 12), modelVarType: 'FIXED_SMALL' });
    const { model, params } = tiny();
    const x = tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', 3);
    const last = await finalSample(ddimSampleLoopProgressive(d, model, x, { clipDenoised: true, eta: 0.5, noise: (i) => tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', 100 + i) }));
    const enc = await finalSample(ddimReverseLoopProgressive(d, model, last, { clipDenoised: false }));
    const noise = tf.randomNormal([12, 2, 2, 2, 2], 0, 1, 'float32', 5);
    const x0 = x.clipByValue(-1, 1);
    const bpd = await calcBpdLoop(d, model, x0, { clipDenoised: true, noise, stepsPerBatch: 5 });
    tf.dispose([last, enc, noise, x0, ...Object.values(bpd)]);
    d.dispose();
    tf.dispose([x, ...params]);
    expect(tf.memory().numTensors).toBe(before);
    // Every operation of the DiffusionOps implementation, through a golden replay: nothing left behind.
    const n0 = tf.memory().numTensors;
    const set = goldenSet(/^id_p_mean_variance\.json$|^timestep_embedding\.json$|^id_training_losses\.json$/);
    // Two training cases suffice for the gradient path (a hybrid and a KL loss); the others repeat it.
    set.cases = set.cases.filter((c) => c.op !== 'training_losses' || /^cases\[(3|8)\] /.test(c.id));
    await expectReplayPasses(set, referenceOps());
    expect(tf.memory().numTensors).toBe(n0);
  });

  it('a NaN produced inside a loop stops it at the step where it appeared, naming the step and t, with nothing left behind  [reference.memory.nanStopsLoop]', async () => {
    // A model that returns NaN from t = 6 on (loop step 3).
    const model: DenoiseModel = (x, tm) => tf.tidy(() => tf.where(tm.reshape([-1, 1, 1, 1]).lessEqual(6).tile([1, ...x.shape.slice(1)]), tf.fill(x.shape, NaN), x.mul(0.1)));
    const xT = tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', 9);
    const before = tf.memory().numTensors;
    const d = new GaussianDiffusion({ betas: improvedBetaSchedule('cosine', 10), modelVarType: 'FIXED_LARGE' });
    const seen: number[] = [];
    let error: unknown;
    try {
      for await (const s of pSampleLoopProgressive(d, model, xT, { clipDenoised: false, noise: (i) => tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', i) })) seen.push(s.step);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as NonFiniteError).step).toBe(3);
    expect((error as NonFiniteError).t).toBe(6);
    expect((error as Error).message).toBe('pSampleLoopProgressive: the sample became non-finite (NaN or ±∞) at loop step 3 (t = 6); the loop was stopped there');
    expect(seen).toEqual([0, 1, 2]);
    d.dispose();
    expect(tf.memory().numTensors).toBe(before);
    xT.dispose();
  });
});
