/**
 * The ELBO of the conjugate linear-Gaussian model (PRML §2.3.3) for a Gaussian variational distribution, in
 * closed form, so that log p(y) = 𝓛(q) + D_KL[q ‖ p(x | y)] can be checked exactly, with each side computed by a
 * different route (the marginal's log-density; this closed form; the Gaussian KL against the closed-form
 * posterior).
 *
 * @module
 */
import { z } from 'zod';
import { addVec, inverseSpd, matMul, matVec, trace, transpose } from '../linalg.ts';
import { argError, parseArg } from '../probability/validate.ts';
import { LinearGaussianModel } from './closedForms.ts';
import { Gaussian, gaussianEntropy, gaussianLogPdf } from './gaussian.ts';

/**
 * ELBO of q(x) = N(x | m, S) for the linear-Gaussian model p(x) = N(x | μ, Λ⁻¹), p(y | x) = N(y | Ax + b, L⁻¹)
 * and an observation y, in nats:
 *
 * $$\mathcal L(q) = \mathbb E_q[\log p(y\mid x)] + \mathbb E_q[\log p(x)] + H[q]$$
 * $$= \log\mathcal N(y\mid Am+b, L^{-1}) - \tfrac12\operatorname{tr}(LASA^\top)
 *   + \log\mathcal N(m\mid\mu,\Lambda^{-1}) - \tfrac12\operatorname{tr}(\Lambda S) + H[\mathcal N(m,S)]$$
 *
 * (each expectation of a log-density is the log-density at the mean minus half the trace of precision ×
 * covariance).
 *
 * @param q - the variational Gaussian over x (dimension D of the prior)
 * @see property `gaussian.elbo.identityLinearGaussian`
 * @see property `gaussian.elbo.eqMonteCarlo`
 * @see property `gaussian.elbo.maxEqMinKlMeanField`
 */
export function linearGaussianElbo(m: LinearGaussianModel, y: readonly number[], q: Gaussian): number {
  const fn = 'linearGaussianElbo';
  const M_ = parseArg(fn, 'm', LinearGaussianModel, m);
  const yy = parseArg(fn, 'y', z.array(z.number()).min(1), y);
  const Q = parseArg(fn, 'q', Gaussian, q);
  if (yy.length !== M_.A.length) argError(fn, `y must have length ${M_.A.length} (the rows of m.A), got ${yy.length}`);
  if (Q.mean.length !== M_.prior.mean.length) argError(fn, `q must have dimension ${M_.prior.mean.length} (that of m.prior), got ${Q.mean.length}`);
  const noisePrec = inverseSpd(M_.noiseCov);
  const priorPrec = inverseSpd(M_.prior.cov);
  const ASAt = matMul(matMul(M_.A, Q.cov), transpose(M_.A));
  const likelihood = gaussianLogPdf({ mean: addVec(matVec(M_.A, Q.mean), M_.b), cov: M_.noiseCov }, yy) - 0.5 * trace(matMul(noisePrec, ASAt));
  const prior = gaussianLogPdf(M_.prior, Q.mean) - 0.5 * trace(matMul(priorPrec, Q.cov));
  return likelihood + prior + gaussianEntropy(Q);
}
