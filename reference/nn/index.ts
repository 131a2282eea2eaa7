/**
 * Neural-network layers of Ho et al.'s UNet on TensorFlow.js (float32, NHWC).
 *
 * @module
 */
export { swish } from './activation.ts';
export { dense } from './dense.ts';
export { groupNorm, groupNormSwish } from './norm.ts';
export { conv2dSame, downsample, upsampleNearest2x } from './conv.ts';
export { dotProductAttention } from './attention.ts';
export { timestepEmbedding, timestepFrequencies } from './timestepEmbedding.ts';
