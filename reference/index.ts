/**
 * The reference DDPM on TensorFlow.js (float32, NHWC, any backend).
 *
 * @module
 */
export * from './diffusion/index.ts';
