/**
 * The reference DDPM on TensorFlow.js (float32, NHWC, any backend).
 *
 * @module
 */
export * from './diffusion/index.ts';
export * as nn from './nn/index.ts';
export * as unet from './unet/index.ts';
export * as grad from './grad/index.ts';
export * as train from './train/index.ts';
