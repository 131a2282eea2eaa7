/**
 * Non-Gaussian test densities for the generic laws of section 1: finite mixtures of Gaussians in any dimension,
 * with their log-density (log-sum-exp of the components) and a sampler.
 */
import fc from 'fast-check';
import type { Rng } from '../../src/numeric/rng.ts';
import { gaussianDensity, type Gaussian } from '../../spec/gaussian/index.ts';
import { logSumExp, type Density } from '../../spec/probability/density.ts';
import { gaussianCase } from '../gaussian/arbitraries.ts';
import { probVector } from './arbitraries.ts';

export interface Mixture extends Density {
  weights: number[];
  components: Gaussian[];
}

/** p(x) = Σ_k w_k N(x | μ_k, Σ_k). */
export function mixture(weights: readonly number[], components: readonly Gaussian[]): Mixture {
  const ds = components.map(gaussianDensity);
  const logW = weights.map(Math.log);
  return {
    dim: ds[0].dim,
    weights: [...weights],
    components: [...components],
    logPdf: (x) => logSumExp(ds.map((d, k) => logW[k] + d.logPdf(x))),
    sample: (rng: Rng) => {
      const u = rng.uniform();
      let k = 0;
      let acc = weights[0];
      while (u >= acc && k < weights.length - 1) acc += weights[++k];
      return ds[k].sample(rng);
    },
  };
}

/**
 * Mixtures of 2–3 Gaussians in `dim` dimensions: means in [−5, 5]^D (several modes, up to 10 apart: clearly not
 * Gaussian), components with eigenvalues in [0.5, 6.4] (κ ≤ 10^0.5 and scale in [0.5, 2]: the narrowest
 * cross-section is ≥ 0.7, so the quadrature rules of the properties resolve it on the ±10σ box of at most 60
 * wide), weights ≥ 1e−3 relative.
 */
export function mixtureArb(dim: number): fc.Arbitrary<Mixture> {
  return fc.integer({ min: 2, max: 3 }).chain((K) =>
    fc
      .tuple(probVector(K), fc.array(gaussianCase({ minDim: dim, maxDim: dim, maxLogCond: 0.5, logScale: [-0.3, 0.3] }), { minLength: K, maxLength: K }))
      .map(([w, cs]) => mixture(w, cs.map((c) => c.g))),
  );
}

/** A box holding all but a negligible mass of a mixture: the union of each component's ±10σ box on axis i. */
export function mixtureBox(m: Mixture, i: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const g of m.components) {
    const s = Math.sqrt(g.cov[i][i]);
    lo = Math.min(lo, g.mean[i] - 10 * s);
    hi = Math.max(hi, g.mean[i] + 10 * s);
  }
  return [lo, hi];
}
