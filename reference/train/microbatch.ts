/**
 * Gradient accumulation over micro-batches: the mean loss of a batch and its gradient, computed a few examples
 * at a time so that only one micro-batch's activations are held in memory at once.
 *
 * The batch 0 … B−1 is cut into J contiguous chunks of at most `microBatch` examples (sizes as equal as
 * possible, {@link shardRanges}); chunk j has n_j examples, mean loss L_j and gradient g_j, and
 *
 * $$L = \sum_j \frac{n_j}{B} L_j,\qquad g = \sum_j \frac{n_j}{B}\, g_j,$$
 *
 * which is the batch mean and its gradient (equal to the one-pass values up to float32 rounding). Chunk j's
 * dropout masks use the seed `dropoutSeed + 104729·j`; with a single chunk (`microBatch ≥ B`) the step is
 * exactly the one-pass step.
 *
 * This is what lets the CIFAR-10 model train on the wasm backend, whose 32-bit heap (at most 4 GB) cannot hold
 * the activations of a batch of 8 at once.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { trainingLosses } from '../diffusion/losses.ts';
import type { GaussianDiffusion } from '../diffusion/buffers.ts';
import type { TrainableModel } from './model.ts';
import { shardRanges } from './parallel.ts';

/** Seed offset between consecutive micro-batches' dropout masks. */
export const MICRO_BATCH_SEED_STRIDE = 104729;

/** The chunks of a batch of `batch` examples for micro-batches of at most `microBatch` (all of it when undefined). */
export function microBatchRanges(batch: number, microBatch: number | undefined): Array<[number, number]> {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`microBatchRanges: batch must be a positive integer, got ${batch}`);
  if (microBatch !== undefined && !(Number.isInteger(microBatch) && microBatch >= 1)) {
    throw new RangeError(`microBatchRanges: microBatch must be a positive integer, got ${microBatch}`);
  }
  return shardRanges(batch, microBatch === undefined ? 1 : Math.ceil(batch / microBatch));
}

/** One batch's data as the training loop draws it (flat, row-major, `shape[0]` examples). */
export interface BatchDraws {
  x0: Float32Array;
  t: number[];
  noise: Float32Array;
  dropoutSeed: number;
  shape: number[];
}

/**
 * Mean loss and gradients (keyed by the model's parameter names) of a batch, accumulated over micro-batches of
 * at most `microBatch` examples. The caller owns and disposes the returned tensors.
 */
export function batchLossAndGradients(
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  d: BatchDraws,
  microBatch?: number,
): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const B = d.shape[0];
  const per = d.x0.length / B;
  if (!Number.isInteger(per) || d.noise.length !== d.x0.length || d.t.length !== B) {
    throw new RangeError(`batchLossAndGradients: shape [${d.shape.join(', ')}] does not fit x0 (${d.x0.length} values), noise (${d.noise.length}) and t (${d.t.length})`);
  }
  const vars = model.names.map((n) => model.variables.get(n)!);
  const nameOf = new Map(model.names.map((n) => [model.variables.get(n)!.name, n]));
  const ranges = microBatchRanges(B, microBatch);
  let loss: tf.Scalar | null = null;
  let acc: Map<string, tf.Tensor> | null = null;
  try {
    for (let j = 0; j < ranges.length; j++) {
      const [a, b] = ranges[j];
      const shape = [b - a, ...d.shape.slice(1)];
      const x0 = tf.tensor(d.x0.subarray(a * per, b * per), shape, 'float32');
      const noise = tf.tensor(d.noise.subarray(a * per, b * per), shape, 'float32');
      const seed = d.dropoutSeed + MICRO_BATCH_SEED_STRIDE * j;
      let r: { value: tf.Scalar; grads: tf.NamedTensorMap };
      try {
        r = tf.variableGrads(() => tf.mean(trainingLosses(diffusion, (x, tm) => model.apply(x, tm, { dropoutSeed: seed }), x0, d.t.slice(a, b), noise).loss) as tf.Scalar, vars);
      } finally {
        tf.dispose([x0, noise]);
      }
      if (ranges.length === 1) {
        loss = r.value;
        acc = new Map(Object.entries(r.grads).map(([vn, g]) => [nameOf.get(vn)!, g]));
        break;
      }
      const w = (b - a) / B;
      const prevLoss: tf.Scalar | null = loss;
      loss = tf.tidy((): tf.Scalar => (prevLoss === null ? tf.mul(r.value, w) : tf.add(prevLoss, tf.mul(r.value, w))) as tf.Scalar);
      prevLoss?.dispose();
      r.value.dispose();
      const next = new Map<string, tf.Tensor>();
      for (const [vn, g] of Object.entries(r.grads)) {
        const n = nameOf.get(vn)!;
        const prev = acc?.get(n);
        next.set(n, tf.tidy(() => (prev === undefined ? tf.mul(g, w) : tf.add(prev, tf.mul(g, w)))));
        g.dispose();
        prev?.dispose();
      }
      acc = next;
    }
  } catch (e) {
    tf.dispose([...(loss ? [loss] : []), ...(acc ? [...acc.values()] : [])]);
    throw e;
  }
  return { loss: loss!, grads: acc! };
}
