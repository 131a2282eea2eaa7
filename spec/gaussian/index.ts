/**
 * Gaussians (section 2 of the derivation): the multivariate normal with a checked SPD covariance, its
 * log-density, sampling and entropy; the univariate helpers; the closed forms of Gaussian algebra (affine maps,
 * sums, marginals, conditionals, the linear-Gaussian model, products); KL divergence between Gaussians.
 *
 * Small dense linear algebra on nested arrays is in `spec/linalg.ts`.
 *
 * @module
 */
export * from './gaussian.ts';
export * from './normal1d.ts';
export * from './closedForms.ts';
export * from './kl.ts';
export * from './variational.ts';
