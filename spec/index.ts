/**
 * The specification: the mathematics of DDPM as pure float64 functions, zod schemas and types, in derivation
 * order: probability → Gaussians → the diffusion model.
 *
 * @module
 */
export * from './probability/index.ts';
export * from './gaussian/index.ts';
export * from './ddpm/index.ts';
