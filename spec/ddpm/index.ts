/**
 * The diffusion model (section 3 of the derivation), in derivation order: schedules, the forward process and its
 * closed-form marginal, the forward-process posterior, the reverse process and its parameterisations, the
 * variational bound and its ε-form, the discrete decoder, sampling, and exact oracles.
 *
 * **Index convention.** Every timestep in `spec/ddpm` is the paper's: t ∈ {1, …, T}, 1-based, with ᾱ_0 = 1
 * (x_0 is the data). The public reference code indexes its buffers with a 0-based `t_code ∈ {0, …, T−1}`, and
 * `t_code = t − 1`: its `alphas_cumprod[t_code]` is our ᾱ_t, its `posterior_variance[0]` is our β̃_1 = 0, and its
 * loops run `t_code = T−1, …, 0`. Only the conformance adapter (`src/conformance/impl/spec.ts`) translates.
 *
 * **Shapes and units.** Functions take one example as a flat vector of D numbers (no batch axis). Likelihoods,
 * KL terms and bounds are in nats, summed over dimensions, unless a name says bits per dimension.
 *
 * @module
 */
export * from './schedule.ts';
export * from './forward.ts';
export * from './posterior.ts';
export * from './parameterisation.ts';
export * from './reverse.ts';
export * from './bound.ts';
export * from './decoder.ts';
export * from './sampling.ts';
export * from './oracles.ts';
export * from './diffusers.ts';
