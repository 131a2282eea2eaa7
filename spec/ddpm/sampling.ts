/**
 * # 3.7 Sampling
 *
 * **Ancestral sampling** (Ho et al. 2020, Algorithm 2): x_T ~ N(0, I), then for t = T, …, 1
 *
 * $$x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z,\qquad z\sim\mathcal N(0, I)\ \text{if}\ t > 1,\ \text{else}\ z = 0$$
 *
 * The final step (t = 1) adds **no noise**: it returns the mean. The noise is passed in, one vector per step in
 * loop order (`noise[i]` is used at t = T − i); an entry for t = 1 may be present and is ignored.
 *
 * **DDIM** (Song, Meng & Ermon 2021, eq. 12) jumps from t to any earlier t' (t' = t − 1 for the full chain, or a
 * subsequence of timesteps):
 *
 * $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z,\qquad
 *   \sigma = \eta\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t'}}}$$
 *
 * η = 0 is deterministic (the noise is ignored); η = 1 with t' = t − 1 is ancestral sampling with σ_t² = β̃_t.
 * The step to t' = 0 has σ = 0 (ᾱ_0 = 1) and returns x̂_0.
 *
 * @module
 */
import type { Schedule } from './schedule.ts';
import { reverseStep, clipToDataRange, type ReverseVarianceSpec } from './reverse.ts';
import { convertPrediction, epsFromX0, type Prediction } from './parameterisation.ts';
import { axpby, checkSameLength, checkScalar, checkTimestep, type Vec } from './internal.ts';

/**
 * A denoising model: its prediction at (t, x_t), t the paper's 1-based timestep.
 *
 * @see property `ddpm.oracle.ancestralReproducesData`
 */
export type DenoisingModel = (t: number, xt: readonly number[]) => Prediction;

/**
 * One sampling step's result: the new sample, the mean it was drawn around, and the predicted x̂_0.
 *
 * @see property `ddpm.sampling.ancestralStepEqMeanPlusNoise`
 */
export interface SampleStep {
  sample: number[];
  mean: number[];
  x0: number[];
}

/**
 * One ancestral step x_t → x_{t−1} (Algorithm 2, line 4): mean + σ_t·z for t ≥ 2, the mean alone at t = 1.
 * The scale is exp(½ log σ_t²), as the reference code does.
 *
 * $$x_{t-1} = \mu_\theta(x_t,t) + \mathbb 1[t>1]\,\sigma_t z$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param z - standard-normal noise, D entries (ignored at t = 1)
 * @param opts.variance - the choice of σ_t² (see `reverseStep`)
 * @param opts.clip - clamp x̂_0 to [−1, 1]
 * @see property `ddpm.sampling.finalStepAddsNoNoise`
 * @see property `ddpm.sampling.ancestralStepEqMeanPlusNoise`
 */
export function ancestralStep(
  s: Schedule,
  t: number,
  xt: Vec,
  pred: Prediction,
  z: Vec,
  opts: { variance: ReverseVarianceSpec; clip?: boolean },
): SampleStep {
  checkTimestep('ancestralStep', t, 1, s.T);
  checkSameLength('ancestralStep', { xt, z });
  const r = reverseStep(s, t, xt, pred, opts.variance, { clip: opts.clip });
  if (t === 1) return { sample: [...r.mean], mean: r.mean, x0: r.x0 };
  const sample = r.mean.map((m, i) => m + Math.exp(0.5 * r.logVariance[i]) * z[i]);
  return { sample, mean: r.mean, x0: r.x0 };
}

function checkNoise(fn: string, noise: readonly Vec[], steps: number, xT: Vec, noiseFree = false): void {
  if (noiseFree && Array.isArray(noise) && noise.length === 0) return;
  if (!Array.isArray(noise) || (noise.length !== steps && noise.length !== steps - 1)) {
    throw new RangeError(
      `${fn}: noise must hold one vector per step in loop order (${steps} entries, or ${steps - 1} without the unused final one), got ${Array.isArray(noise) ? noise.length : typeof noise}`,
    );
  }
  noise.forEach((z, i) => checkSameLength(fn, { xT, [`noise[${i}]`]: z }));
}

/**
 * Ancestral sampling (Algorithm 2) from x_T with the noise given.
 *
 * $$x_T\ \to\ x_{T-1}\ \to\ \cdots\ \to\ x_0,\qquad x_{t-1} = \mu_\theta(x_t,t) + \mathbb 1[t>1]\,\sigma_t z_t$$
 *
 * @param xT - the starting point x_T (normally a standard-normal draw)
 * @param model - the prediction at each (t, x_t)
 * @param noise - `noise[i]` is z at t = T − i, for i = 0…T−2; a T-th entry (t = 1) may be present and is ignored
 * @param opts.trajectory - also return x_{T−1}, …, x_0 (`trajectory[i]` = x_{T−1−i})
 * @see property `ddpm.sampling.finalStepAddsNoNoise`
 * @see property `ddpm.oracle.ancestralReproducesData`
 */
export function ancestralSample(
  s: Schedule,
  xT: Vec,
  model: DenoisingModel,
  noise: readonly Vec[],
  opts: { variance: ReverseVarianceSpec; clip?: boolean; trajectory?: boolean },
): { x0: number[]; trajectory?: number[][] } {
  checkNoise('ancestralSample', noise, s.T, xT);
  let x = Array.from(xT);
  const traj: number[][] = [];
  for (let t = s.T; t >= 1; t--) {
    const z = t > 1 ? noise[s.T - t] : x; // the final step ignores its noise; pass anything of the right length
    x = ancestralStep(s, t, x, model(t, x), z, opts).sample;
    if (opts.trajectory) traj.push(x);
  }
  return opts.trajectory ? { x0: x, trajectory: traj } : { x0: x };
}

function alphaBarOrZero(s: Schedule, t: number): number {
  return t === s.T + 1 ? 0 : s.alphaBar(t);
}

/**
 * The DDIM noise scale for a jump t → t' < t.
 *
 * $$\sigma = \eta\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t'}}}$$
 *
 * With η = 1 and t' = t − 1, σ² = β̃_t.
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param tPrev - 0 ≤ t' < t (t' = 0 gives σ = 0)
 * @param eta - η ≥ 0
 * @see property `ddpm.sampling.ddimEtaOneEqAncestral`
 * @see property `ddpm.sampling.ddimEtaOneEqStridedPosterior`
 */
export function ddimSigma(s: Schedule, t: number, tPrev: number, eta: number): number {
  checkTimestep('ddimSigma', t, 1, s.T);
  checkTimestep('ddimSigma', tPrev, 0, t - 1, 'tPrev');
  checkScalar('ddimSigma', 'eta', eta, { lo: 0 });
  // 1 − ᾱ_t/ᾱ_{t'} = −expm1(Σ_{s=t'+1}^{t} log1p(−β_s)) (β_t when t' = t − 1): no cancellation when the ratio is
  // close to 1 (small β).
  let oneMinusRatio = s.beta(t);
  if (t > tPrev + 1) {
    let logRatio = 0;
    for (let u = tPrev + 1; u <= t; u++) logRatio += Math.log1p(-s.beta(u));
    oneMinusRatio = -Math.expm1(logRatio);
  }
  return eta * Math.sqrt(s.oneMinusAlphaBar(tPrev) / s.oneMinusAlphaBar(t)) * Math.sqrt(oneMinusRatio);
}

/**
 * One DDIM step x_t → x_{t'} (Song et al. eq. 12). x̂_0 comes from the prediction (clipped when asked); ε̂ is
 * the prediction itself when it is an unclipped ε, and is otherwise re-derived from x̂_0, as the reference code does.
 *
 * $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param tPrev - the target timestep, 0 ≤ t' < t
 * @param eta - η ≥ 0 (0: deterministic; the noise is then ignored)
 * @param z - standard-normal noise, D entries
 * @see property `ddpm.sampling.ddimEtaZeroIgnoresNoise`
 * @see property `ddpm.sampling.ddimEtaOneEqAncestral`
 * @see property `ddpm.sampling.ddimPreservesForwardMarginal`
 */
export function ddimStep(
  s: Schedule,
  t: number,
  tPrev: number,
  xt: Vec,
  pred: Prediction,
  eta: number,
  z: Vec,
  opts: { clip?: boolean } = {},
): SampleStep {
  const sigma = ddimSigma(s, t, tPrev, eta);
  checkSameLength('ddimStep', { xt, z, 'pred.value': pred?.value });
  let x0 = convertPrediction(s, t, xt, pred, 'x0');
  if (opts.clip) x0 = clipToDataRange(x0);
  const eps = pred.kind === 'eps' && !opts.clip ? Array.from(pred.value) : epsFromX0(s, t, xt, x0);
  const abPrev = s.alphaBar(tPrev);
  const mean = axpby(Math.sqrt(abPrev), x0, Math.sqrt(Math.max(0, s.oneMinusAlphaBar(tPrev) - sigma * sigma)), eps);
  const sample = sigma === 0 ? [...mean] : mean.map((m, i) => m + sigma * z[i]);
  return { sample, mean, x0 };
}

/**
 * DDIM sampling along a decreasing sequence of timesteps τ_1 > τ_2 > … > τ_S ≥ 1 (the full chain is
 * T, T−1, …, 1), ending with the jump τ_S → 0, which returns x̂_0.
 *
 * $$x_{\tau_1}\ \to\ x_{\tau_2}\ \to\ \cdots\ \to\ x_{\tau_S}\ \to\ x_0$$
 *
 * @param timesteps - strictly decreasing paper timesteps in 1…T, the first normally T
 * @param noise - `noise[i]` is z of the i-th jump (S entries, or S − 1: the last jump adds no noise); with η = 0
 *   it is not used and may be empty
 * @see property `ddpm.sampling.ddimEtaZeroIgnoresNoise`
 * @see property `ddpm.oracle.ddimReproducesData`
 */
export function ddimSample(
  s: Schedule,
  xT: Vec,
  model: DenoisingModel,
  timesteps: readonly number[],
  eta: number,
  noise: readonly Vec[],
  opts: { clip?: boolean } = {},
): { x0: number[] } {
  if (!Array.isArray(timesteps) || timesteps.length === 0) throw new RangeError('ddimSample: timesteps must be a non-empty array of paper timesteps');
  timesteps.forEach((t, i) => {
    checkTimestep('ddimSample', t, 1, s.T, `timesteps[${i}]`);
    if (i > 0 && !(t < timesteps[i - 1])) throw new RangeError(`ddimSample: timesteps must be strictly decreasing, got ${timesteps[i - 1]} then ${t} at index ${i}`);
  });
  checkNoise('ddimSample', noise, timesteps.length, xT, eta === 0);
  let x = Array.from(xT);
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i];
    const tPrev = i + 1 < timesteps.length ? timesteps[i + 1] : 0;
    x = ddimStep(s, t, tPrev, x, model(t, x), eta, i < noise.length ? noise[i] : x, opts).sample; // no noise: σ = 0 ignores z
  }
  return { x0: x };
}

/**
 * One deterministic reverse-DDIM (encoding) step x_t → x_{t'} with t' > t: the η = 0 update run forwards in
 * time. t' = T + 1 stands for the reference code's convention `alphas_cumprod_next[T−1] = 0` (ᾱ_{T+1} = 0,
 * which returns ε̂).
 *
 * $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}}\,\hat\varepsilon$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param tNext - t < t' ≤ T + 1
 * @see property `ddpm.sampling.ddimReverseInvertsDdim`
 */
export function ddimReverseStep(s: Schedule, t: number, tNext: number, xt: Vec, pred: Prediction, opts: { clip?: boolean } = {}): SampleStep {
  checkTimestep('ddimReverseStep', t, 1, s.T);
  checkTimestep('ddimReverseStep', tNext, t + 1, s.T + 1, 'tNext');
  checkSameLength('ddimReverseStep', { xt, 'pred.value': pred?.value });
  let x0 = convertPrediction(s, t, xt, pred, 'x0');
  if (opts.clip) x0 = clipToDataRange(x0);
  const eps = pred.kind === 'eps' && !opts.clip ? Array.from(pred.value) : epsFromX0(s, t, xt, x0);
  const abNext = alphaBarOrZero(s, tNext);
  const oneMinus = tNext === s.T + 1 ? 1 : s.oneMinusAlphaBar(tNext);
  const mean = axpby(Math.sqrt(abNext), x0, Math.sqrt(oneMinus), eps);
  return { sample: [...mean], mean, x0 };
}
