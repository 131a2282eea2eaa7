/**
 * Reader for `timestep_embedding.json`: per record (dim, timesteps) the outputs of Ho's/pesser's, improved's
 * and diffusers' embeddings, replayed through the `ho` and `improved` flavours; recorded errors (Ho's division
 * by zero at dim 2, 3) must be refused.
 *
 * @module
 */
import { FormatError } from '../../formats/errors.ts';
import { looksLikeTensor } from '../../formats/jsonTensor.ts';
import { override } from '../../numeric/tolerance.ts';
import { expectShape, has, listField, numberField, objectField, q, stringField, tensorField } from '../tensors.ts';
import { GOLDEN_TOL } from '../tolerances.ts';
import type { Check, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';
import { guarded } from './common.ts';

/** Which flavour replays which recorded column; diffusers' columns name the column they must equal. */
const COLUMNS: Record<string, { flavor: 'ho' | 'improved'; sameAs?: string }> = {
  ho_pesser_get_timestep_embedding: { flavor: 'ho' },
  improved_timestep_embedding: { flavor: 'improved' },
  'diffusers_get_timestep_embedding_default(flip=False,shift=1)': { flavor: 'ho', sameAs: 'ho_pesser_get_timestep_embedding' },
  'diffusers_get_timestep_embedding(flip=True,shift=0)': { flavor: 'improved', sameAs: 'improved_timestep_embedding' },
};

function embeddingCheck(expected: Tensor, t: Tensor): Check {
  const [N, dim] = expected.shape;
  const values = new Float64Array(N * dim);
  for (let i = 0; i < N * dim; i++) values[i] = Math.abs(t.data[Math.floor(i / dim)]) <= 100 ? GOLDEN_TOL.embeddingSmallT.atol : GOLDEN_TOL.embeddingLargeT.atol;
  return {
    quantity: 'embedding',
    expected,
    tol: override({ rtol: 0, atol: GOLDEN_TOL.embeddingSmallT.atol }, `${GOLDEN_TOL.embeddingSmallT.reason}; ${GOLDEN_TOL.embeddingLargeT.reason}`),
    elementAtol: { values, formula: '5e-6 where t ≤ 100, 5e-4 above' },
    locate: (i) => `t = ${t.data[Math.floor(i / dim)]}, column ${i % dim}`,
  };
}

/** `timestep_embedding.json`. */
export function readTimestepEmbedding(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'records', file).forEach((_, ri) => 
    guarded(skipped, file, `records[${ri}]`, () => {
    const p = `records.${ri}`;
    const rec = objectField(root, p, file);
    const dim = numberField(root, `${p}.dim`, file, { integer: true, min: 1 });
    const kind = has(rec, 't_kind') ? stringField(root, `${p}.t_kind`, file) : '?';
    const t = tensorField(root, `${p}.t`, file);
    expectShape(t, [null], file, `${p}.t`);
    const N = t.shape[0];
    for (const key of Object.keys(rec)) {
      if (key === 'dim' || key === 't' || key === 't_kind') continue;
      const id = `dim ${dim}, ${kind} t: ${key}`;
      const col = COLUMNS[key];
      if (!col) {
        skipped.push({ file, case: id, reason: 'no reader for this embedding column' });
        continue;
      }
      const v = rec[key];
      const err = typeof v === 'object' && v !== null && !Array.isArray(v) && 'error' in v ? String((v as { error: unknown }).error) : undefined;
      if (col.sameAs) {
        // diffusers' columns replay through the flavour whose column they equal; where they differ from it
        // (an error vs NaN at dim 2, a zero column vs none at dim 1), the flavour follows the other column.
        const ref = rec[col.sameAs];
        const refErr = typeof ref === 'object' && ref !== null && 'error' in ref;
        if (refErr !== (err !== undefined)) {
          skipped.push({ file, case: id, kind: 'not applicable', reason: `here diffusers ${err ? `raises (${err})` : 'returns a value (NaN or a number)'} where ${col.sameAs} ${refErr ? 'raises' : 'returns a value'}; the ${col.flavor} flavour follows ${col.sameAs}` });
          continue;
        }
        if (!refErr && looksLikeTensor(ref) && looksLikeTensor(v)) {
          const a = tensorField(root, `${p}.${q(col.sameAs)}`, file);
          const b = tensorField(root, `${p}.${q(key)}`, file);
          if (a.shape.join() !== b.shape.join()) {
            skipped.push({ file, case: id, kind: 'not applicable', reason: `here diffusers returns shape [${b.shape.join(',')}] where ${col.sameAs} returns [${a.shape.join(',')}]; the ${col.flavor} flavour follows ${col.sameAs}` });
            continue;
          }
        }
      }
      const flavor = col.flavor;
      if (err !== undefined) {
        cases.push({ file, id, op: 'timestep_embedding', checks: [], expectError: err, run: async (impl) => impl.timestep_embedding!({ flavor, dim }, t) });
        continue;
      }
      if (!looksLikeTensor(v)) throw new FormatError(file, `${p}.${q(key)}`, 'expected a tensor or {"error": …}');
      const expected = tensorField(root, `${p}.${q(key)}`, file);
      if (expected.shape.length !== 2 || expected.shape[0] !== N) throw new FormatError(file, `${p}.${q(key)}.shape`, `expected [${N}, ·], got [${expected.shape.join(',')}]`);
      cases.push({ file, id, op: 'timestep_embedding', checks: [embeddingCheck(expected, t)], run: async (impl) => impl.timestep_embedding!({ flavor, dim }, t) });
    }
  }));
  return { cases, skipped };
}
