/**
 * Our own implementations behind the `--impl` protocol: the TypeScript example of a protocol server.
 *
 * ```sh
 * npx ddpm-spec check --impl "npx tsx src/conformance/examples/server.ts"            # the tfjs reference
 * npx ddpm-spec check --impl "npx tsx src/conformance/examples/server.ts spec"       # the float64 spec
 * npx ddpm-spec check --impl "npx tsx src/conformance/examples/server.ts spec --decline p_mean_variance:FIXED_LARGE"
 * ```
 *
 * `--decline OP:MODEL_VAR_TYPE` answers "unsupported" for the cases of OP with that variance type (a listed
 * operation that declines some cases: the verdict is INCOMPLETE, and the report lists them).
 *
 * For your own TypeScript implementation, replace the {@link DiffusionOps} object below by yours (implement the
 * operations you have; leave the others out and the checker lists them as skipped) and keep the call to
 * {@link serve}. Anything you print must go to stderr: stdout carries the protocol.
 *
 * @module
 */
import type { DiffusionOps } from '../ops.ts';
import { serve } from './serve.ts';

const which = process.argv[2] ?? 'reference';
const declineAt = process.argv.indexOf('--decline');
const decline = declineAt > 0 ? process.argv[declineAt + 1]?.split(':') : undefined;

let ops: DiffusionOps;
if (which === 'spec') {
  const { createSpecOps } = await import('../impl/spec.ts');
  ops = createSpecOps();
} else if (which === 'reference') {
  const { initBackend } = await import('../../backend.ts');
  await initBackend(); // DDPM_BACKEND chooses the backend, as everywhere in this package
  const { referenceOps } = await import('../impl/reference.ts');
  ops = referenceOps();
} else {
  process.stderr.write(`server.ts: expected "reference" or "spec", got ${JSON.stringify(which)}\n`);
  process.exit(2);
}

await serve(ops, {
  notes: `src/conformance/examples/server.ts ${which}: our ${which === 'spec' ? 'float64 spec' : 'tfjs reference'} through the protocol`,
  unsupported: decline ? (op, args) => (op === decline[0] && args.model_var_type === decline[1] ? `${op} with ${decline[1]} is declined by this server (--decline)` : undefined) : undefined,
});
