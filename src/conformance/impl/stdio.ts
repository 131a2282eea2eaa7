/**
 * An implementation under test that runs as a child process and speaks the `--impl` protocol
 * (see `../protocol.ts`): JSON lines over its stdin and stdout.
 *
 * {@link connectStdio} starts the command through the shell, performs the handshake and returns a
 * {@link DiffusionOps} whose methods are exactly the operations the child says it implements. Every call sends
 * one request and resolves with the decoded answer. What can go wrong is reported in words that name the
 * operation, the request id and what was expected:
 *
 * - the child answers with an error → {@link OpError} (or {@link OpUnsupported} for `type: "unsupported"`);
 * - an answer lacks an output or has a malformed tensor → {@link ImplError} for that call only;
 * - the child exits, writes something that is not a protocol message to stdout, answers an id nobody asked
 *   for, or does not answer within the timeout → {@link ImplError} for that call and every later one (the
 *   child is stopped: a session that has lost its place cannot be trusted). The message ends with the last
 *   lines the child wrote to stderr.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { FormatError } from '../../formats/errors.ts';
import { OP_NAMES, OpError, OpUnsupported, type DiffusionOps, type OpName } from '../ops.ts';
import { HelloResponse, PROTOCOL_VERSION, decodeResult, encodeCall } from '../protocol.ts';
import { DEFAULT_PRECISION } from '../vocabulary.ts';

/** The implementation broke the protocol, died, or timed out. */
export class ImplError extends Error {
  override name = 'ImplError';
}

export { OpUnsupported };

export interface StdioOptions {
  /** Seconds to wait for the answer to one operation (default 120). */
  timeoutS?: number;
  /** Seconds to wait for the answer to `hello`, which includes the child's start-up (default 120: importing torch takes a while). */
  helloTimeoutS?: number;
  /** Working directory of the child (default: the current one). */
  cwd?: string;
  /** Pass the child's stderr through to ours instead of keeping only its tail for error messages. */
  inheritStderr?: boolean;
  /** Name of the checker, sent in `hello`. */
  checker?: string;
}

/** A connected implementation: the operations it implements, plus what the handshake said. */
export type StdioOps = DiffusionOps & {
  /** The command line it was started with. */
  readonly command: string;
  /** Operations the child implements and the checker knows. */
  readonly supported: readonly OpName[];
  /** Operation names the child listed that the checker does not know (ignored). */
  readonly unknownOps: readonly string[];
  /** The child's `notes` from the handshake. */
  readonly notes?: string;
  /** Close the child's stdin and wait for it to exit (stopping it after a grace period). */
  close(): Promise<void>;
};

const Envelope = z.object({ id: z.number().int().nonnegative() }).passthrough();
const ErrorBody = z.object({ message: z.string(), type: z.string().optional() });

interface Pending {
  op: string;
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const STDERR_TAIL = 4000;

class Connection {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private broken: ImplError | null = null;
  private stderrTail = '';
  private lineNo = 0;
  private exited: Promise<void>;
  private exitInfo: string | null = null;

  constructor(
    readonly command: string,
    private readonly opts: StdioOptions,
  ) {
    this.child = spawn(command, {
      shell: true,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
      // Its own process group, so that stopping it also stops what the shell started.
      detached: true,
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exitInfo = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        this.fail(`the implementation ${this.exitInfo}`);
        process.off('exit', this.killOnExit);
        resolve();
      });
    });
    this.child.once('error', (e) => this.fail(`cannot start the implementation \`${command}\`: ${e.message}`));
    // A write error (EPIPE) usually means the child is exiting: wait for its exit, whose code and stderr say more,
    // and fall back to the write error only if it does not come.
    this.child.stdin!.on('error', (e) => {
      const timer = setTimeout(() => this.fail(`cannot write to the implementation's stdin (${e.message})`), 2000);
      timer.unref();
      void this.exited.then(() => clearTimeout(timer));
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-STDERR_TAIL);
    });
    const rl = createInterface({ input: this.child.stdout!, crlfDelay: Infinity });
    rl.on('line', (line) => this.onLine(line));
    process.on('exit', this.killOnExit);
  }

  private readonly killOnExit = (): void => {
    this.killGroup('SIGKILL');
  };

  private killGroup(signal: NodeJS.Signals): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      try {
        this.child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }

  /** The last lines of the child's stderr, indented, for error messages. */
  stderrNote(): string {
    const tail = this.stderrTail.trimEnd();
    if (tail === '') return this.opts.inheritStderr ? '' : '\n  (it wrote nothing to stderr)';
    const lines = tail.split('\n').slice(-15);
    return `\n  its stderr ended with:\n${lines.map((l) => `    | ${l}`).join('\n')}`;
  }

  /** Break the session: reject everything pending, and every later call, with this reason. */
  private fail(reason: string): void {
    if (this.broken === null) this.broken = new ImplError(reason);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ImplError(`${p.op} (request ${id}): ${reason}${this.stderrNote()}`));
    }
    this.pending.clear();
    this.killGroup('SIGTERM');
  }

  private onLine(line: string): void {
    this.lineNo++;
    if (line.trim() === '') return;
    const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(`line ${this.lineNo} of its stdout is not JSON: ${JSON.stringify(shown)} (stdout carries only protocol messages; write logs to stderr)`);
      return;
    }
    const env = Envelope.safeParse(msg);
    if (!env.success) {
      this.fail(`line ${this.lineNo} of its stdout is not a protocol message (it needs a non-negative integer "id"): ${shown}`);
      return;
    }
    const { id } = env.data;
    const p = this.pending.get(id);
    if (!p) {
      this.fail(`line ${this.lineNo} of its stdout answers request ${id}, which is not waiting for an answer`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(env.data);
  }

  /** Send one request and wait for the message that answers it. */
  request(op: string, args: unknown, inputs: unknown, timeoutS: number): Promise<Record<string, unknown>> {
    if (this.broken) return Promise.reject(new ImplError(`${op}: not sent, because ${this.broken.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ImplError(`${op} (request ${id}): no answer within ${timeoutS} s (raise it with --timeout); the implementation was stopped${this.stderrNote()}`));
        this.fail(`the implementation was stopped after ${op} (request ${id}) got no answer within ${timeoutS} s`);
      }, timeoutS * 1000);
      this.pending.set(id, { op, resolve, reject, timer });
      const text = `${JSON.stringify({ id, op, args, inputs })}\n`;
      this.child.stdin!.write(text);
    });
  }

  async close(): Promise<void> {
    if (this.exitInfo === null) {
      this.broken ??= new ImplError('the session was closed');
      this.child.stdin!.end();
      const grace = (s: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), s * 1000).unref());
      if ((await Promise.race([this.exited, grace(3)])) === 'timeout') {
        this.killGroup('SIGTERM');
        if ((await Promise.race([this.exited, grace(2)])) === 'timeout') this.killGroup('SIGKILL');
      }
    }
    process.off('exit', this.killOnExit);
  }
}

/**
 * Start `command` (through the shell, in its own process group), perform the handshake, and return the
 * implementation as {@link DiffusionOps}.
 *
 * @throws {@link ImplError} when the child cannot be started, dies, or answers `hello` wrongly
 */
export async function connectStdio(command: string, opts: StdioOptions = {}): Promise<StdioOps> {
  const conn = new Connection(command, opts);
  const timeoutS = opts.timeoutS ?? 120;
  let helloMsg: Record<string, unknown>;
  try {
    helloMsg = await conn.request('hello', { protocol: PROTOCOL_VERSION, checker: opts.checker ?? 'ddpm-spec check', ops: [...OP_NAMES] }, {}, opts.helloTimeoutS ?? 120);
  } catch (e) {
    await conn.close();
    throw new ImplError(`\`${command}\` did not complete the handshake: ${(e as Error).message}`);
  }
  const hello = HelloResponse.safeParse(helloMsg);
  if (!hello.success) {
    await conn.close();
    const issue = hello.error.issues[0];
    const body = 'error' in helloMsg ? ` (it answered with an error: ${JSON.stringify(helloMsg.error)})` : '';
    throw new ImplError(
      `\`${command}\` answered hello with an unexpected message${body}: field ${issue.path.join('.') || '(root)'}: ${issue.message}; expected {"id": 0, "hello": {"protocol": ${PROTOCOL_VERSION}, "name": "...", "ops": [...]}}`,
    );
  }
  const { name, ops, notes, precision } = hello.data.hello;
  const known = new Set<string>(OP_NAMES);
  const supported = OP_NAMES.filter((o) => ops.includes(o));
  const unknownOps = ops.filter((o) => !known.has(o));

  const impl: Record<string, unknown> = {
    name,
    command,
    supported,
    unknownOps,
    notes,
    precision: precision ?? DEFAULT_PRECISION,
    close: () => conn.close(),
  };
  for (const op of supported) {
    impl[op] = async (...params: unknown[]) => {
      const { args, inputs } = encodeCall(op, params);
      const msg = await conn.request(op, args, inputs, timeoutS);
      const where = `answer to ${op} (request ${String(msg.id)})`;
      if ('error' in msg) {
        const body = ErrorBody.safeParse(msg.error);
        if (!body.success) throw new ImplError(`${where}: "error" must be {"message": "...", "type"?: "..."}, got ${JSON.stringify(msg.error).slice(0, 200)}`);
        const { message, type } = body.data;
        if (type === 'unsupported') throw new OpUnsupported(`${op}: unsupported by the implementation: ${message}`);
        throw new OpError(`${op}: the implementation raised ${type ? `${type}: ` : ''}${message}`);
      }
      const outputs = msg.outputs;
      if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) {
        throw new ImplError(`${where}: expected {"id": ..., "outputs": {name: tensor, ...}} or {"id": ..., "error": {...}}, got keys ${Object.keys(msg).join(', ')}`);
      }
      try {
        return decodeResult(op, outputs as Record<string, unknown>, where);
      } catch (e) {
        if (e instanceof FormatError) throw new ImplError(e.message);
        throw e;
      }
    };
  }
  return impl as unknown as StdioOps;
}
