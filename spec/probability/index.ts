/**
 * Probability (section 1 of the derivation): tabular joint distributions over named variables and continuous
 * densities; expectation (exact, quadrature, Monte Carlo), marginalisation, conditioning; KL divergence;
 * variational inference and the ELBO; and the argument validation shared by the whole specification.
 *
 * @module
 */
export * from './validate.ts';
export * from './table.ts';
export * from './density.ts';
export * from './kl.ts';
export * from './variational.ts';
