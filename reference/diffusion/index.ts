/**
 * The diffusion core of the reference DDPM on TensorFlow.js: schedules and buffers, the forward process and
 * its posterior, the reverse process for every parameterisation, likelihoods and the variational bound,
 * training losses, timestep embeddings, respacing, and the sampling loops.
 *
 * float32 tensors, batch first, channels last (NHWC); 0-based timesteps t ∈ {0, …, T−1}, one per example.
 * The formulas are re-implemented here (nothing is imported from `spec/`), so that agreement with the spec
 * is evidence.
 *
 * @module
 */
export * from './errors.ts';
export * from './schedules.ts';
export * from './buffers.ts';
export * from './model.ts';
export * from './forward.ts';
export * from './reverse.ts';
export * from './likelihood.ts';
export * from './losses.ts';
export * from './embedding.ts';
export * from './sampling.ts';
export * from './bpd.ts';
export * from './diffusers.ts';
