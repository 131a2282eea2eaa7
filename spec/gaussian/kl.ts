/**
 * KL divergence between Gaussians in closed form, in nats.
 *
 * @module
 */
import { z } from 'zod';
import { cholesky, solveLower, subVec } from '../linalg.ts';
import { argError, parseArg } from '../probability/validate.ts';
import { Gaussian } from './gaussian.ts';

/**
 * KL divergence between two D-dimensional Gaussians with full covariances, in nats:
 *
 * $$D_{\mathrm{KL}}\big[\mathcal N(\mu_q,\Sigma_q)\,\|\,\mathcal N(\mu_p,\Sigma_p)\big] = \tfrac12\Big[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q)
 *   + (\mu_p-\mu_q)^\top\Sigma_p^{-1}(\mu_p-\mu_q) - D + \log\det\Sigma_p - \log\det\Sigma_q\Big]$$
 *
 * Computed through the Cholesky factors Σ_p = L_pL_pᵀ, Σ_q = L_qL_qᵀ: tr(Σ_p⁻¹Σ_q) = ‖L_p⁻¹L_q‖²_F and the
 * quadratic form is ‖L_p⁻¹(μ_p − μ_q)‖².
 *
 * @see property `gaussian.kl.eqQuadrature`
 * @see property `gaussian.kl.eqMonteCarlo`
 * @see property `gaussian.kl.isDivergence`
 * @see property `gaussian.kl.affineInvariant`
 */
export function klGaussian(q: Gaussian, p: Gaussian): number {
  const fn = 'klGaussian';
  const Q = parseArg(fn, 'q', Gaussian, q);
  const P = parseArg(fn, 'p', Gaussian, p);
  const D = Q.mean.length;
  if (P.mean.length !== D) argError(fn, `q and p must have the same dimension, got ${D} and ${P.mean.length}`);
  const Lp = cholesky(P.cov);
  const Lq = cholesky(Q.cov);
  let tr = 0;
  for (let j = 0; j < D; j++) {
    const col = solveLower(Lp, Lq.map((row) => row[j]));
    for (const v of col) tr += v * v;
  }
  const z = solveLower(Lp, subVec(P.mean, Q.mean));
  let quad = 0;
  for (const v of z) quad += v * v;
  let logDetRatio = 0; // log det Σp − log det Σq
  for (let i = 0; i < D; i++) logDetRatio += 2 * (Math.log(Lp[i][i]) - Math.log(Lq[i][i]));
  return 0.5 * (tr + quad - D + logDetRatio);
}

const Vec = z.array(z.number()).min(1).readonly();
const Variances = z.array(z.number().positive()).min(1).readonly();

/**
 * KL divergence between Gaussians with diagonal covariances, given as variances (not standard deviations or
 * log-variances), in nats, summed over the D dimensions:
 *
 * $$D_{\mathrm{KL}}\big[\mathcal N(\mu_q,\operatorname{diag}\sigma_q^2)\,\|\,\mathcal N(\mu_p,\operatorname{diag}\sigma_p^2)\big]
 *   = \sum_{i=1}^{D}\tfrac12\left[\log\frac{\sigma_{p,i}^2}{\sigma_{q,i}^2} + \frac{\sigma_{q,i}^2 + (\mu_{q,i}-\mu_{p,i})^2}{\sigma_{p,i}^2} - 1\right]$$
 *
 * @see property `gaussian.kl.diagEqFull`
 * @see property `gaussian.kl.diagSumOverDims`
 */
export function klDiagGaussian(meanQ: readonly number[], varQ: readonly number[], meanP: readonly number[], varP: readonly number[]): number {
  const fn = 'klDiagGaussian';
  const mq = parseArg(fn, 'meanQ', Vec, meanQ);
  const vq = parseArg(fn, 'varQ', Variances, varQ);
  const mp = parseArg(fn, 'meanP', Vec, meanP);
  const vp = parseArg(fn, 'varP', Variances, varP);
  const D = mq.length;
  for (const [name, v] of [['varQ', vq], ['meanP', mp], ['varP', vp]] as const) {
    if (v.length !== D) argError(fn, `${name} must have length ${D} (the length of meanQ), got ${v.length}`);
  }
  let s = 0;
  for (let i = 0; i < D; i++) {
    const d = mq[i] - mp[i];
    s += 0.5 * (Math.log(vp[i] / vq[i]) + (vq[i] + d * d) / vp[i] - 1);
  }
  return s;
}
