/**
 * Serve any {@link DiffusionOps} over the `--impl` protocol (JSON lines on stdin/stdout).
 *
 * This is the TypeScript side of the protocol, for an implementation that lives outside this package: implement
 * the operations you have as a {@link DiffusionOps} object (0-based t, NCHW `{shape, data: Float64Array}`
 * tensors), then
 *
 * ```ts
 * import { serve } from 'ddpm-spec/src/conformance/examples/serve.ts';
 * await serve(myOps);
 * ```
 *
 * and run `npx ddpm-spec check --impl "npx tsx my-server.ts"`. Requests are answered one at a time, in order.
 * Logs must go to stderr: stdout carries only protocol messages.
 *
 * @module
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { FormatError } from '../../formats/errors.ts';
import { OP_NAMES, OpUnsupported, type DiffusionOps, type OpName } from '../ops.ts';
import { PROTOCOL_VERSION, decodeCall, encodeResult } from '../protocol.ts';

/** Options for {@link serve}. */
export interface ServeOptions {
  input?: Readable;
  output?: Writable;
  /** Shown in the checker's report. */
  notes?: string;
  /**
   * Decline some arguments (answered with `type: "unsupported"`: the checker does not check the case, and the
   * verdict is INCOMPLETE with the case listed). Return a reason, or undefined to go ahead.
   */
  unsupported?: (op: OpName, args: Record<string, unknown>) => string | undefined;
}

/** Answer protocol requests with `ops` until the input ends. */
export async function serve(ops: DiffusionOps, options: ServeOptions = {}): Promise<void> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const send = (msg: unknown): Promise<void> =>
    new Promise((resolve, reject) => {
      output.write(`${JSON.stringify(msg)}\n`, (e) => (e ? reject(e) : resolve()));
    });
  const implemented = OP_NAMES.filter((op) => typeof ops[op] === 'function');
  const rl = createInterface({ input, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let req: { id?: unknown; op?: unknown; args?: unknown; inputs?: unknown };
    try {
      req = JSON.parse(line);
    } catch {
      process.stderr.write(`serve: ignoring a line that is not JSON: ${line.slice(0, 80)}\n`);
      continue;
    }
    const id = typeof req.id === 'number' ? req.id : -1;
    if (req.op === 'hello') {
      await send({ id, hello: { protocol: PROTOCOL_VERSION, name: ops.name, ops: implemented, ...(ops.precision ? { precision: ops.precision } : {}), ...(ops.cdf ? { cdf: ops.cdf } : {}), ...(options.notes ? { notes: options.notes } : {}) } });
      continue;
    }
    const op = req.op as OpName;
    if (!implemented.includes(op)) {
      await send({ id, error: { message: `operation ${String(req.op)} is not implemented`, type: 'unsupported' } });
      continue;
    }
    try {
      const args = (req.args ?? {}) as Record<string, unknown>;
      const why = options.unsupported?.(op, args);
      if (why !== undefined) {
        await send({ id, error: { message: why, type: 'unsupported' } });
        continue;
      }
      const params = decodeCall(op, args, (req.inputs ?? {}) as Record<string, unknown>, `request ${id} (${op})`);
      const fn = ops[op] as (...p: unknown[]) => Promise<unknown>;
      const result = await fn.apply(ops, params);
      await send({ id, outputs: encodeResult(op, result) });
    } catch (e) {
      const err = e as Error;
      await send({ id, error: { message: err.message, type: e instanceof OpUnsupported ? 'unsupported' : e instanceof FormatError ? 'bad_request' : err.name } });
    }
  }
}
