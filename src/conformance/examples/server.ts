/**
 * Our own implementations behind the `--impl` protocol: the TypeScript example of a protocol server.
 *
 * ```sh
 * npx ddpm-spec check --impl "npx tsx src/conformance/examples/server.ts"            # the tfjs reference
 * npx ddpm-spec check --impl "npx tsx src/conformance/examples/server.ts spec"       # the float64 spec
 * ```
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

await serve(ops, { notes: `src/conformance/examples/server.ts ${which}: our ${which === 'spec' ? 'float64 spec' : 'tfjs reference'} through the protocol` });
