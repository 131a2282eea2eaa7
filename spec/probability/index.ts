/**
 * Probability (section 1 of the derivation): argument validation shared by the specification; tabular joint
 * distributions over named variables and continuous densities; expectation, marginalisation, conditioning;
 * KL divergence; variational inference and the ELBO.
 *
 * @module
 */
export * from './validate.ts';
