/**
 * ddpm-spec: an executable, property-tested specification of denoising diffusion probabilistic models
 * (Ho, Jain & Abbeel 2020), with a reference implementation on TensorFlow.js.
 *
 * The maths lives in `spec/`, the tfjs reference in `reference/`; this module is the package's public
 * plumbing: numerics, backends and file formats.
 *
 * A doc comment states its formula in LaTeX, rendered to MathML in the API pages, e.g. the closeness test
 * used everywhere:
 *
 * $$|a - e| \le \mathrm{atol} + \mathrm{rtol}\cdot|e|$$
 *
 * @module
 */
export * from './numeric/tolerance.ts';
export * from './numeric/close.ts';
export * from './numeric/rng.ts';
export * from './numeric/stats.ts';
export * from './formats/errors.ts';
export * from './formats/jsonTensor.ts';
export * from './formats/safetensors.ts';
export * from './io/atomic.ts';
export { initBackend, probeAll, currentBackend, BackendError, BACKENDS, type BackendName, type BackendProbe, type BackendReport } from './backend.ts';
