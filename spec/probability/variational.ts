/**
 * Variational inference on finite latent-variable models: the evidence lower bound (ELBO)
 *
 * $$\mathcal L(\xi) = \mathbb E_{q(Z;\xi)}\big[\log p(X, Z) - \log q(Z;\xi)\big]$$
 *
 * and the identity it rests on, log p(X) = 𝓛(ξ) + D_KL[q(Z; ξ) ‖ p(Z | X)] (Bishop, PRML eq. 10.2), which the
 * properties check; the variational family used in them (a softmax over logits); and a derivative-free
 * maximiser (Nelder–Mead) to fit ξ, so that "maximising 𝓛 is minimising the KL" can be checked numerically.
 *
 * Observed variables X are given by an {@link Assignment}; the latent variables Z are the joint table's other
 * variables. Everything is in nats.
 *
 * @module
 */
import { z } from 'zod';
import { allAssignments, TabularDistribution, type Assignment } from './table.ts';
import { argError, parseArg } from './validate.ts';

function latentSetup(fn: string, joint: TabularDistribution, observed: Assignment) {
  const J = parseArg(fn, 'joint', TabularDistribution, joint);
  if (typeof observed !== 'object' || observed === null) argError(fn, 'observed must be an object mapping variable names to values');
  for (const [k, v] of Object.entries(observed)) {
    const w = J.variables.find((u) => u.name === k);
    if (!w) argError(fn, `observed names "${k}", which is not a variable of joint`);
    if (!Number.isInteger(v) || v < 0 || v >= w.size) argError(fn, `observed.${k} must be an integer in [0, ${w.size}), got ${v}`);
  }
  const latent = J.variables.filter((v) => !(v.name in observed));
  if (latent.length === 0) argError(fn, 'joint must have at least one latent (unobserved) variable');
  const st: number[] = [];
  let acc = 1;
  for (let i = J.variables.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= J.variables[i].size;
  }
  /** log p(x̂, z) for a latent assignment z. */
  const logJoint = (a: Assignment) => {
    let k = 0;
    J.variables.forEach((v, i) => (k += (v.name in observed ? observed[v.name] : a[v.name]) * st[i]));
    return Math.log(J.values[k]);
  };
  return { latent, logJoint };
}

/**
 * Log-evidence of the observed values, summing the joint over the latent variables:
 *
 * $$\log p(\hat x) = \log\sum_z p(\hat x, z)$$
 *
 * (−∞ when the observation has probability 0).
 *
 * @see property `probability.elbo.identityTabular`
 */
export function logEvidenceTabular(joint: TabularDistribution, observed: Assignment): number {
  const { latent, logJoint } = latentSetup('logEvidenceTabular', joint, observed);
  let s = 0;
  for (const a of allAssignments(latent)) s += Math.exp(logJoint(a));
  return Math.log(s);
}

/**
 * The ELBO of a variational distribution q over the latent variables, for a finite joint p(X, Z):
 *
 * $$\mathcal L(q) = \sum_{z:\,q(z)>0} q(z)\big[\log p(\hat x, z) - \log q(z)\big]$$
 *
 * −∞ when q puts mass where p(x̂, z) = 0.
 *
 * @param q - a distribution over exactly the latent variables (the joint's variables not in `observed`), in any order
 * @see property `probability.elbo.identityTabular`
 * @see property `probability.elbo.boundTabular`
 * @see property `probability.elbo.maxEqMinKl`
 */
export function elboTabular(joint: TabularDistribution, observed: Assignment, q: TabularDistribution): number {
  const fn = 'elboTabular';
  const { latent, logJoint } = latentSetup(fn, joint, observed);
  const Q = parseArg(fn, 'q', TabularDistribution, q);
  const want = latent.map((v) => `${v.name}:${v.size}`).sort().join(',');
  const got = Q.variables.map((v) => `${v.name}:${v.size}`).sort().join(',');
  if (want !== got) argError(fn, `q must be a distribution over the latent variables [${want}], got [${got}]`);
  let s = 0;
  allAssignments(Q.variables).forEach((a, k) => {
    const qz = Q.values[k];
    if (qz === 0) return;
    s += qz * (logJoint(a) - Math.log(qz));
  });
  return s;
}

/**
 * Softmax: logits ξ ↦ the probability vector
 *
 * $$\operatorname{softmax}(\xi)_i = \frac{e^{\xi_i}}{\sum_j e^{\xi_j}}$$
 *
 * computed after subtracting max ξ (no overflow). With one logit fixed at 0 it parameterises every distribution
 * with full support on a finite set without redundancy.
 *
 * @see property `probability.softmax.isDistribution`
 */
export function softmax(xi: readonly number[]): number[] {
  const X = parseArg('softmax', 'xi', z.array(z.number()).min(1), xi);
  const m = Math.max(...X);
  const e = X.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Options of {@link maximise}. */
export interface MaximiseOptions {
  /** Initial simplex edge length (default 0.5). */
  step?: number;
  /** Stop when the simplex's function values differ by less than this (default 1e-13). */
  fTol?: number;
  /** Stop when the simplex's diameter is less than this (default 1e-10). */
  xTol?: number;
  /** Iteration cap (default 20 000). */
  maxIter?: number;
}

/**
 * Maximise a function of ξ ∈ ℝ^k by the Nelder–Mead simplex method (reflection 1, expansion 2, contraction ½,
 * shrink ½), derivative-free, deterministic: the fitting step of variational inference, ξ* = argmax_ξ 𝓛(ξ),
 * for the small models of the properties. Finds a local maximum; the properties use smooth objectives whose
 * maximiser is unique.
 *
 * @param x0 - starting point, length k ≥ 1
 * @returns the best point found, its value, and the number of iterations
 * @see property `probability.maximise.findsQuadraticMax`
 * @see property `probability.elbo.maxEqMinKl`
 */
export function maximise(f: (xi: readonly number[]) => number, x0: readonly number[], opts: MaximiseOptions = {}): { x: number[]; value: number; iterations: number } {
  const X0 = parseArg('maximise', 'x0', z.array(z.number()).min(1), x0);
  const k = X0.length;
  const step = opts.step ?? 0.5;
  const fTol = opts.fTol ?? 1e-13;
  const xTol = opts.xTol ?? 1e-10;
  const maxIter = opts.maxIter ?? 20_000;
  const g = (x: readonly number[]) => {
    const v = -f(x);
    return Number.isNaN(v) ? Infinity : v;
  };
  let simplex = [X0.slice()];
  for (let i = 0; i < k; i++) {
    const x = X0.slice();
    x[i] += step;
    simplex.push(x);
  }
  let vals = simplex.map(g);
  let it = 0;
  for (; it < maxIter; it++) {
    const order = vals.map((_, i) => i).sort((a, b) => vals[a] - vals[b]);
    simplex = order.map((i) => simplex[i]);
    vals = order.map((i) => vals[i]);
    let diam = 0;
    for (let i = 1; i <= k; i++) for (let j = 0; j < k; j++) diam = Math.max(diam, Math.abs(simplex[i][j] - simplex[0][j]));
    if (Math.abs(vals[k] - vals[0]) <= fTol * (1 + Math.abs(vals[0])) && diam <= xTol) break;
    const centroid = new Array<number>(k).fill(0);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) centroid[j] += simplex[i][j] / k;
    const along = (t: number) => centroid.map((c, j) => c + t * (simplex[k][j] - c));
    const xr = along(-1);
    const fr = g(xr);
    if (fr < vals[0]) {
      const xe = along(-2);
      const fe = g(xe);
      if (fe < fr) {
        simplex[k] = xe;
        vals[k] = fe;
      } else {
        simplex[k] = xr;
        vals[k] = fr;
      }
    } else if (fr < vals[k - 1]) {
      simplex[k] = xr;
      vals[k] = fr;
    } else {
      const outside = fr < vals[k];
      const xc = along(outside ? -0.5 : 0.5);
      const fc = g(xc);
      if (fc < (outside ? fr : vals[k])) {
        simplex[k] = xc;
        vals[k] = fc;
      } else {
        for (let i = 1; i <= k; i++) {
          simplex[i] = simplex[i].map((v, j) => simplex[0][j] + 0.5 * (v - simplex[0][j]));
          vals[i] = g(simplex[i]);
        }
      }
    }
  }
  let best = 0;
  for (let i = 1; i <= k; i++) if (vals[i] < vals[best]) best = i;
  return { x: simplex[best].slice(), value: -vals[best], iterations: it };
}
