/**
 * What the diffusion code calls: a denoising model `(x, t_model) → output`, and the tiny linear model the
 * golden data uses to drive the diffusion code.
 *
 * Layout: NHWC (channels last), batch first. The model's output has the channels of x for fixed variances,
 * twice as many for learned ones (`[…, :C]` the mean part, `[…, C:]` the variance part).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { ReferenceArgumentError, floatTensor, shapeStr } from './errors.ts';

/**
 * A denoising model. `tModel` is float32 `[B]`: the timestep the diffusion hands to the model (the integer t,
 * t·1000/T when timesteps are rescaled, or the original timestep of a respaced step). The result must be a
 * new tensor (the caller disposes it).
 */
export type DenoiseModel = (x: tf.Tensor, tModel: tf.Tensor1D) => tf.Tensor;

/** Parameters of the TinyModel: `W` [out, in], `bias` [out], `tw` [out] (float32). */
export interface TinyModelParams {
  W: tf.Tensor2D;
  bias: tf.Tensor1D;
  tw: tf.Tensor1D;
}

/**
 * The golden data's TinyModel, a fixed linear map standing in for the network (NHWC):
 *
 * $$\mathrm{out}[b,\dots,o] = \sum_i W[o,i]\,x[b,\dots,i] + \mathrm{bias}[o] + \mathrm{tw}[o]\cdot t_{\mathrm{model}}[b]/1000$$
 *
 * Only matMul, add and mul, so its gradients work on every backend.
 */
export function tinyModel(p: TinyModelParams): DenoiseModel {
  const fn = 'tinyModel';
  floatTensor(fn, 'W', p.W, 2);
  floatTensor(fn, 'bias', p.bias, 1);
  floatTensor(fn, 'tw', p.tw, 1);
  const [out, cin] = p.W.shape;
  if (p.W.rank !== 2 || p.bias.rank !== 1 || p.tw.rank !== 1 || p.bias.shape[0] !== out || p.tw.shape[0] !== out) {
    throw new ReferenceArgumentError(fn, 'bias', `W must be [out,in] with bias and tw of length out, got W ${shapeStr(p.W.shape)}, bias ${shapeStr(p.bias.shape)}, tw ${shapeStr(p.tw.shape)}`);
  }
  return (x, tModel) =>
    tf.tidy(() => {
      if (x.shape[x.rank - 1] !== cin) {
        throw new ReferenceArgumentError(fn, 'x', `x must have ${cin} channels on its last axis (NHWC), got shape ${shapeStr(x.shape)}`);
      }
      const B = x.shape[0];
      if (tModel.shape[0] !== B) throw new ReferenceArgumentError(fn, 'tModel', `tModel must have one entry per batch element (${B}), got ${tModel.shape[0]}`);
      // Explicit transpose: on wasm a matMul with a transpose flag is much slower than transposing first.
      const mixed = tf.matMul(x.reshape([-1, cin]), p.W.transpose()).reshape([...x.shape.slice(0, -1), out]);
      const tShape = [B, ...new Array<number>(x.rank - 2).fill(1), 1];
      const tTerm = p.tw.reshape([1, out]).mul(tModel.reshape([B, 1])).div(1000).reshape([...tShape.slice(0, -1), out]);
      return mixed.add(p.bias).add(tTerm);
    });
}

/** A "model" that returns a fixed output whatever its input (for replaying recorded model outputs). */
export function fixedOutputModel(output: tf.Tensor): DenoiseModel {
  return () => output.clone();
}
