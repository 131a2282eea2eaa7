/**
 * Shared helpers of the UNet properties: loading the golden small model and its inputs (configuration
 * read from the files), NCHW ↔ NHWC.
 */
import * as tf from '@tensorflow/tfjs';
import { readJson, tensorAt, valueAt, type DecodedTensor } from '../../src/formats/jsonTensor.ts';
import { UNetConfig } from '../../reference/unet/config.ts';
import type { UNetParams } from '../../reference/unet/params.ts';
import { readStateDict } from '../../reference/unet/weights.ts';

export const GOLDEN = 'golden/upstream';
export const WEIGHTS_FILE = `${GOLDEN}/ho_unet_small.safetensors`;
export const IO_FILE = `${GOLDEN}/ho_unet_small_io.json`;
export const ACTIVATIONS_FILE = `${GOLDEN}/ho_unet_small_activations.safetensors`;
export const SAMPLING_FILE = `${GOLDEN}/sampling_T10_ho_unet_small.json`;

/** The golden small model: configuration from the safetensors metadata (checked against the JSON's `meta.args`). */
export function loadGoldenModel(): { config: UNetConfig; params: UNetParams; ioConfig: UNetConfig } {
  const { config, params } = readStateDict(WEIGHTS_FILE);
  const ioConfig = UNetConfig.parse(valueAt(readJson(IO_FILE), 'meta.args', IO_FILE));
  return { config, params, ioConfig };
}

/** A golden NCHW float tensor as an NHWC tfjs tensor. */
export function nhwc(t: DecodedTensor | { shape: number[]; data: ArrayLike<number> }): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(Float32Array.from(t.data), t.shape as [number, number, number, number]).transpose([0, 2, 3, 1]));
}

/** Read an NHWC (or any-rank) tensor back as NCHW row-major numbers. */
export async function nchwData(t: tf.Tensor): Promise<Float32Array> {
  if (t.rank !== 4) return (await t.data()) as Float32Array;
  const p = t.transpose([0, 3, 1, 2]);
  const d = (await p.data()) as Float32Array;
  p.dispose();
  return d;
}

export { readJson, tensorAt, valueAt };
