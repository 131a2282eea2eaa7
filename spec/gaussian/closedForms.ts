/**
 * Closed forms of Gaussian algebra: affine maps, sums of independent Gaussians, marginals, conditionals (Schur
 * complement), the linear-Gaussian model (Bishop, PRML §2.3.3, eqs. 2.113–2.117), and the product of two
 * Gaussian densities.
 *
 * Indices of variables are 0-based positions in the mean vector. Every returned covariance is symmetrised
 * (½(C + Cᵀ)) so that rounding never makes it fail the {@link Gaussian} schema, and is then checked: a result
 * that is not positive definite (for example an affine map with rank-deficient A) is an error, not a silent
 * degenerate Gaussian.
 *
 * @module
 */
import { z } from 'zod';
import {
  addMat,
  addVec,
  blockDiag,
  checkIndexList,
  cholesky,
  identity,
  inverseSpd,
  matMul,
  matVec,
  solveLower,
  solveUpper,
  subMat,
  subMatrix,
  subVec,
  symmetrize,
  transpose,
  type Matrix,
  type Vector,
} from '../linalg.ts';
import { argError, parseArg } from '../probability/validate.ts';
import { Gaussian, SpdMatrix, gaussianLogPdf } from './gaussian.ts';

const FiniteVector = z.array(z.number()).min(1).readonly();
const FiniteMatrix = z
  .array(z.array(z.number()).min(1).readonly())
  .min(1)
  .readonly()
  .refine((A) => A.every((r) => r.length === A[0].length), { message: 'must be rectangular (all rows the same length)' });

/** Build a Gaussian from a computed mean and covariance, symmetrising and checking it. */
function result(fn: string, mean: Vector, cov: Matrix, what: string): Gaussian {
  const r = Gaussian.safeParse({ mean, cov: symmetrize(cov) });
  if (!r.success) argError(fn, `${what} is not a valid Gaussian: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}

/** Solve ΣX = B for SPD Σ given its Cholesky factor L (columns of B solved one by one). */
function cholSolveMat(L: Matrix, B: Matrix): number[][] {
  const Lt = transpose(L);
  const cols = B[0].map((_, j) => solveUpper(Lt, solveLower(L, B.map((row) => row[j]))));
  return B.map((_, i) => cols.map((c) => c[i]));
}

/**
 * Affine map of a Gaussian: if x ~ N(μ, Σ) then Ax + b ~ N(Aμ + b, AΣAᵀ).
 *
 * $$x\sim\mathcal N(\mu,\Sigma)\ \Rightarrow\ Ax+b\sim\mathcal N(A\mu+b,\ A\Sigma A^\top)$$
 *
 * @param A - M×D matrix with full row rank M ≤ D (otherwise AΣAᵀ is singular and this throws)
 * @param b - offset of length M
 * @see property `gaussian.affine.eqMonteCarlo`
 * @see property `gaussian.affine.matchesComposition`
 * @see property `gaussian.affine.rejectsBadInput`
 */
export function affineGaussian(g: Gaussian, A: Matrix, b: Vector): Gaussian {
  const fn = 'affineGaussian';
  const G = parseArg(fn, 'g', Gaussian, g);
  const AA = parseArg(fn, 'A', FiniteMatrix, A);
  const bb = parseArg(fn, 'b', FiniteVector, b);
  const D = G.mean.length;
  if (AA[0].length !== D) argError(fn, `A must have ${D} columns (the dimension of g), got ${AA[0].length}`);
  if (bb.length !== AA.length) argError(fn, `b must have length ${AA.length} (the rows of A), got ${bb.length}`);
  const mean = addVec(matVec(AA, G.mean), bb);
  const cov = matMul(matMul(AA, G.cov), transpose(AA));
  return result(fn, mean, cov, 'A Σ Aᵀ (A must have full row rank)');
}

/**
 * Sum of independent Gaussians: if x₁ ~ N(μ₁, Σ₁) and x₂ ~ N(μ₂, Σ₂) are independent then
 *
 * $$x_1 + x_2 \sim \mathcal N(\mu_1+\mu_2,\ \Sigma_1+\Sigma_2)$$
 *
 * @see property `gaussian.sum.eqMonteCarlo`
 * @see property `gaussian.sum.eqAffineOfJoint`
 */
export function sumIndependentGaussians(g1: Gaussian, g2: Gaussian): Gaussian {
  const fn = 'sumIndependentGaussians';
  const a = parseArg(fn, 'g1', Gaussian, g1);
  const c = parseArg(fn, 'g2', Gaussian, g2);
  if (a.mean.length !== c.mean.length) argError(fn, `g1 and g2 must have the same dimension, got ${a.mean.length} and ${c.mean.length}`);
  return result(fn, addVec(a.mean, c.mean), addMat(a.cov, c.cov), 'Σ₁ + Σ₂');
}

/**
 * Marginal of a joint Gaussian over the variables `idx` (0-based, in the order given):
 *
 * $$p(x_a) = \int \mathcal N(x\mid\mu,\Sigma)\,dx_b = \mathcal N(x_a\mid\mu_a,\Sigma_{aa})$$
 *
 * @see property `gaussian.marginal.eqQuadrature`
 * @see property `gaussian.marginal.eqMonteCarlo`
 * @see property `gaussian.marginal.commutes`
 */
export function gaussianMarginal(g: Gaussian, idx: readonly number[]): Gaussian {
  const fn = 'gaussianMarginal';
  const G = parseArg(fn, 'g', Gaussian, g);
  checkIndexList(fn, 'idx', idx, G.mean.length);
  return result(fn, idx.map((i) => G.mean[i]), subMatrix(G.cov, idx, idx), 'Σ_aa');
}

/**
 * Conditional of a joint Gaussian, p(x_a | x_b = x̂_b), by the Schur complement (PRML 2.81–2.82); variables in
 * neither `idxA` nor `idxB` are marginalised out:
 *
 * $$\mu_{a|b} = \mu_a + \Sigma_{ab}\Sigma_{bb}^{-1}(\hat x_b-\mu_b),\qquad
 *   \Sigma_{a|b} = \Sigma_{aa} - \Sigma_{ab}\Sigma_{bb}^{-1}\Sigma_{ba}$$
 *
 * @param idxA - 0-based indices of the variables of the result, in the order given
 * @param idxB - 0-based indices of the observed variables, disjoint from idxA
 * @param xB - observed values, `xB[k]` for variable `idxB[k]`
 * @see property `gaussian.conditional.eqLogJointMinusLogMarginal`
 * @see property `gaussian.conditional.eqPrecisionForm`
 * @see property `gaussian.conditional.eqQuadrature`
 * @see property `gaussian.conditional.rejectsBadInput`
 */
export function gaussianConditional(g: Gaussian, idxA: readonly number[], idxB: readonly number[], xB: Vector): Gaussian {
  const fn = 'gaussianConditional';
  const G = parseArg(fn, 'g', Gaussian, g);
  const D = G.mean.length;
  checkIndexList(fn, 'idxA', idxA, D);
  checkIndexList(fn, 'idxB', idxB, D);
  const overlap = idxA.filter((i) => idxB.includes(i));
  if (overlap.length > 0) argError(fn, `idxA and idxB must be disjoint, both contain ${overlap.join(', ')}`);
  const xb = parseArg(fn, 'xB', FiniteVector, xB);
  if (xb.length !== idxB.length) argError(fn, `xB must have length ${idxB.length} (one value per index of idxB), got ${xb.length}`);
  const Saa = subMatrix(G.cov, idxA, idxA);
  const Sab = subMatrix(G.cov, idxA, idxB);
  const Sbb = subMatrix(G.cov, idxB, idxB);
  const Lb = cholesky(Sbb);
  const dev = subVec(xb, idxB.map((i) => G.mean[i]));
  // K = Σ_ab Σ_bb⁻¹ (as Kᵀ = Σ_bb⁻¹ Σ_ba).
  const Kt = cholSolveMat(Lb, transpose(Sab));
  const K = transpose(Kt);
  const mean = addVec(idxA.map((i) => G.mean[i]), matVec(K, dev));
  const cov = subMat(Saa, matMul(K, transpose(Sab)));
  return result(fn, mean, cov, 'the Schur complement Σ_aa − Σ_ab Σ_bb⁻¹ Σ_ba');
}

/**
 * The linear-Gaussian model of PRML §2.3.3: a prior p(x) = N(x | μ, Λ⁻¹) on x ∈ ℝ^D and a likelihood
 * p(y | x) = N(y | Ax + b, L⁻¹) on y ∈ ℝ^M. Stated with covariances: `prior.cov` is Λ⁻¹ and `noiseCov` is L⁻¹.
 *
 * @see property `gaussian.linearGaussian.marginalEqJoint`
 * @see property `gaussian.linearGaussian.rejectsMismatchedDims`
 */
export const LinearGaussianModel = z
  .object({
    prior: Gaussian,
    A: FiniteMatrix,
    b: FiniteVector,
    noiseCov: SpdMatrix,
  })
  .superRefine((m, ctx) => {
    const D = m.prior.mean.length;
    const M = m.A.length;
    if (m.A[0].length !== D) ctx.addIssue({ code: 'custom', path: ['A'], message: `must have ${D} columns (the dimension of prior), got ${m.A[0].length}` });
    if (m.b.length !== M) ctx.addIssue({ code: 'custom', path: ['b'], message: `must have length ${M} (the rows of A), got ${m.b.length}` });
    if (m.noiseCov.length !== M) ctx.addIssue({ code: 'custom', path: ['noiseCov'], message: `must be ${M}×${M} (the rows of A), got ${m.noiseCov.length} rows` });
  });
export type LinearGaussianModel = z.infer<typeof LinearGaussianModel>;

/**
 * The joint p(x, y) of the linear-Gaussian model, as a Gaussian over the stacked vector (x, y) (x first, then y:
 * D + M variables). Computed independently of the closed forms below, as the affine image
 * (x, y) = [[I, 0], [A, I]](x, ε) + (0, b) of the independent pair x ~ N(μ, Λ⁻¹), ε ~ N(0, L⁻¹):
 *
 * $$\begin{pmatrix}x\\y\end{pmatrix}\sim\mathcal N\!\left(\begin{pmatrix}\mu\\A\mu+b\end{pmatrix},
 *   \begin{pmatrix}\Lambda^{-1}&\Lambda^{-1}A^\top\\A\Lambda^{-1}&L^{-1}+A\Lambda^{-1}A^\top\end{pmatrix}\right)$$
 *
 * @see property `gaussian.linearGaussian.jointEqMonteCarlo`
 * @see property `gaussian.linearGaussian.marginalEqJoint`
 * @see property `gaussian.linearGaussian.posteriorEqJoint`
 */
export function linearGaussianJoint(m: LinearGaussianModel): Gaussian {
  const fn = 'linearGaussianJoint';
  const M_ = parseArg(fn, 'm', LinearGaussianModel, m);
  const D = M_.prior.mean.length;
  const M = M_.A.length;
  const indep = { mean: [...M_.prior.mean, ...new Array<number>(M).fill(0)], cov: blockDiag(M_.prior.cov, M_.noiseCov) };
  const I_D = identity(D);
  const I_M = identity(M);
  const T = [...I_D.map((row) => [...row, ...new Array<number>(M).fill(0)]), ...M_.A.map((row, i) => [...row, ...I_M[i]])];
  return affineGaussian(indep, T, [...new Array<number>(D).fill(0), ...M_.b]);
}

/**
 * Marginal of y in the linear-Gaussian model (PRML 2.115):
 *
 * $$p(y) = \mathcal N(y\mid A\mu + b,\ L^{-1} + A\Lambda^{-1}A^\top)$$
 *
 * @see property `gaussian.linearGaussian.marginalEqJoint`
 */
export function linearGaussianMarginal(m: LinearGaussianModel): Gaussian {
  const fn = 'linearGaussianMarginal';
  const M_ = parseArg(fn, 'm', LinearGaussianModel, m);
  const mean = addVec(matVec(M_.A, M_.prior.mean), M_.b);
  const cov = addMat(M_.noiseCov, matMul(matMul(M_.A, M_.prior.cov), transpose(M_.A)));
  return result(fn, mean, cov, 'L⁻¹ + AΛ⁻¹Aᵀ');
}

/**
 * Posterior of x given an observed y in the linear-Gaussian model (PRML 2.116–2.117), in precision form:
 *
 * $$p(x\mid y) = \mathcal N\big(x\mid \Sigma\{A^\top L(y-b) + \Lambda\mu\},\ \Sigma\big),\qquad
 *   \Sigma = (\Lambda + A^\top L A)^{-1}$$
 *
 * @param y - the observation, length M
 * @see property `gaussian.linearGaussian.posteriorEqJoint`
 * @see property `gaussian.linearGaussian.posteriorEqBayes`
 */
export function linearGaussianPosterior(m: LinearGaussianModel, y: Vector): Gaussian {
  const fn = 'linearGaussianPosterior';
  const M_ = parseArg(fn, 'm', LinearGaussianModel, m);
  const yy = parseArg(fn, 'y', FiniteVector, y);
  if (yy.length !== M_.A.length) argError(fn, `y must have length ${M_.A.length} (the rows of m.A), got ${yy.length}`);
  const Lambda = inverseSpd(M_.prior.cov);
  const Lnoise = inverseSpd(M_.noiseCov);
  const At = transpose(M_.A);
  const precision = symmetrize(addMat(Lambda, matMul(matMul(At, Lnoise), M_.A)));
  const Sigma = inverseSpd(precision);
  const rhs = addVec(matVec(matMul(At, Lnoise), subVec(yy, M_.b)), matVec(Lambda, M_.prior.mean));
  return result(fn, matVec(Sigma, rhs), Sigma, '(Λ + AᵀLA)⁻¹');
}

/**
 * Product of two Gaussian densities in the same variable: an unnormalised Gaussian (PRML exercise 2.40,
 * Petersen & Pedersen §8.1.8),
 *
 * $$\mathcal N(x\mid a,A)\,\mathcal N(x\mid b,B) = Z\,\mathcal N(x\mid c,C),\quad
 *   C=(A^{-1}+B^{-1})^{-1},\ c = C(A^{-1}a+B^{-1}b),\ Z=\mathcal N(a\mid b, A+B)$$
 *
 * @returns `gaussian` N(c, C) and `logNormaliser` log Z (nats)
 * @see property `gaussian.product.eqPointwise`
 * @see property `gaussian.product.normaliserEqQuadrature`
 * @see property `gaussian.product.rejectsMismatchedDims`
 */
export function productOfGaussians(g1: Gaussian, g2: Gaussian): { gaussian: Gaussian; logNormaliser: number } {
  const fn = 'productOfGaussians';
  const a = parseArg(fn, 'g1', Gaussian, g1);
  const c = parseArg(fn, 'g2', Gaussian, g2);
  if (a.mean.length !== c.mean.length) argError(fn, `g1 and g2 must have the same dimension, got ${a.mean.length} and ${c.mean.length}`);
  const Pa = inverseSpd(a.cov);
  const Pb = inverseSpd(c.cov);
  const C = inverseSpd(symmetrize(addMat(Pa, Pb)));
  const mean = matVec(C, addVec(matVec(Pa, a.mean), matVec(Pb, c.mean)));
  const gaussian = result(fn, mean, C, '(A⁻¹ + B⁻¹)⁻¹');
  const logNormaliser = gaussianLogPdf({ mean: c.mean, cov: symmetrize(addMat(a.cov, c.cov)) }, a.mean);
  return { gaussian, logNormaliser };
}

/**
 * A 1-D normal distribution by its mean and variance (a variance, not a standard deviation).
 *
 * @see property `probability.posteriorPredictive.eqQuadrature`
 */
export const Normal1d = z.object({ mean: z.number(), variance: z.number().positive() }).readonly();
export type Normal1d = z.infer<typeof Normal1d>;

/**
 * The posterior predictive of the normal model with known noise variance (the Bayes step followed by
 * marginalisation): with prior θ ~ N(μ₀, τ₀²) and observations y_i | θ ~ N(θ, σ²), i = 1…n, independent given θ,
 * the posterior is N(μ_n, τ_n²) and a new observation ỹ | y_{1:n} ~ N(μ_n, σ² + τ_n²):
 *
 * $$p(\tilde y\mid y_{1:n}) = \int \mathcal N(\tilde y;\theta,\sigma^2)\,p(\theta\mid y_{1:n})\,d\theta
 *   = \mathcal N\big(\tilde y;\ \mu_n,\ \sigma^2+\tau_n^2\big),\qquad
 *   \frac1{\tau_n^2} = \frac1{\tau_0^2}+\frac n{\sigma^2},\quad \mu_n = \tau_n^2\Big(\frac{\mu_0}{\tau_0^2}+\frac{\sum_i y_i}{\sigma^2}\Big)$$
 *
 * (PRML eqs. 2.141–2.142 for the posterior.) With n = 0 it is the prior predictive N(μ₀, σ² + τ₀²).
 *
 * @param prior - N(μ₀, τ₀²), τ₀² > 0
 * @param noiseVariance - σ² > 0
 * @param ys - the observations y_1…y_n, n ≥ 0
 * @see property `probability.posteriorPredictive.eqQuadrature`
 */
export function normalPosteriorPredictive(prior: Normal1d, noiseVariance: number, ys: readonly number[]): Normal1d {
  const fn = 'normalPosteriorPredictive';
  const P = parseArg(fn, 'prior', Normal1d, prior);
  const s2 = parseArg(fn, 'noiseVariance', z.number().positive(), noiseVariance);
  const Y = parseArg(fn, 'ys', z.array(z.number()).readonly(), ys);
  const precision = 1 / P.variance + Y.length / s2;
  const tau2 = 1 / precision;
  const mean = tau2 * (P.mean / P.variance + Y.reduce((a, y) => a + y, 0) / s2);
  return { mean, variance: s2 + tau2 };
}
