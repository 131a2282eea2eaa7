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
 * - a line longer than {@link MAX_LINE_BYTES} (256 MiB), or nested deeper than 3 levels of objects around a
 *   tensor of rank {@link MAX_TENSOR_RANK} (8), is refused before it is parsed, with a one-line {@link ImplError}.
 *
 * **The child cannot outlive the checker.** It runs in its own process group, and the whole group is stopped
 * (SIGTERM, then SIGKILL after a grace period of 2 s) whenever the session ends: on close, on any of the failures
 * above, when the direct child exits but something it started still holds stdout, and when the checker itself
 * gets SIGINT or SIGTERM (after which the checker dies of that signal) or exits. A process that leaves the group
 * (`setsid`) is out of reach. The handshake has the same timeout as every operation unless told otherwise.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  /** Seconds to wait for the answer to `hello`, which includes the child's start-up (default: `timeoutS`, else 120). */
  helloTimeoutS?: number;
  /** Working directory of the child (default: the current one). */
  cwd?: string;
  /** Pass the child's stderr through to ours instead of keeping only its tail for error messages. */
  inheritStderr?: boolean;
  /** Name of the checker, sent in `hello`. */
  checker?: string;
  /** The longest line the child may write to stdout, in bytes (default {@link MAX_LINE_BYTES}). */
  maxLineBytes?: number;
  /** Seconds between SIGTERM and SIGKILL when the child's process group is stopped (default 2). */
  graceS?: number;
}

/** The longest answer line accepted by default: 256 MiB (a float64 tensor of ~10 million numbers as JSON text). */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

/**
 * The highest tensor rank an answer may hold. A message nests at most 3 levels of objects (the envelope,
 * `outputs`, a tensor) around a tensor's `data`, which nests once per dimension, so a line nested deeper than
 * 3 + {@link MAX_TENSOR_RANK} levels is refused before it is parsed.
 */
export const MAX_TENSOR_RANK = 8;
const MAX_LINE_DEPTH = 3 + MAX_TENSOR_RANK;

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
  /** The process group of the child (its pid): every process it starts belongs to it unless it leaves. */
  readonly pgid: number | undefined;
  /** Close the child's stdin, wait for it to exit, and stop whatever is left of its process group. */
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
/** A pause that keeps the checker alive (the child's pipes may already be released). */
const sleep = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));

/** Whether any process of group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The deepest nesting of arrays and objects in a JSON text, or `limit + 1` as soon as it passes `limit`
 * (brackets inside strings do not count).
 */
function jsonDepth(bytes: Buffer, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Connections whose process group may still be alive: stopped when the checker exits or is interrupted. */
const live = new Set<Connection>();

/** SIGINT/SIGTERM of the checker: stop every child's group (SIGTERM, then SIGKILL after the grace), then die of the same signal. */
function onCheckerSignal(signal: NodeJS.Signals): void {
  process.off('SIGINT', onCheckerSignal);
  process.off('SIGTERM', onCheckerSignal);
  void Promise.all([...live].map((c) => c.stopGroup())).finally(() => process.kill(process.pid, signal));
}

function onCheckerExit(): void {
  for (const c of live) c.signalGroup('SIGKILL');
}

function track(c: Connection): void {
  if (live.size === 0) {
    process.on('SIGINT', onCheckerSignal);
    process.on('SIGTERM', onCheckerSignal);
    process.on('exit', onCheckerExit);
  }
  live.add(c);
}

function untrack(c: Connection): void {
  if (!live.delete(c) || live.size > 0) return;
  process.off('SIGINT', onCheckerSignal);
  process.off('SIGTERM', onCheckerSignal);
  process.off('exit', onCheckerExit);
}

class Connection {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private broken: ImplError | null = null;
  private stderrTail = '';
  private lineNo = 0;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Resolves when the direct child has exited. */
  private readonly exited: Promise<void>;
  private exitInfo: string | null = null;
  private stopping: Promise<void> | null = null;
  private readonly maxLineBytes: number;
  private readonly graceS: number;

  constructor(
    readonly command: string,
    private readonly opts: StdioOptions,
  ) {
    this.maxLineBytes = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.graceS = opts.graceS ?? 2;
    this.child = spawn(command, {
      shell: true,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
      // Its own process group, so that stopping it also stops what the shell and the child started.
      detached: true,
    });
    if (this.child.pid !== undefined) track(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        resolve();
        // Its stdout normally closes with it; if a process it started still holds stdout, nothing more can come.
        const timer = setTimeout(() => this.fail(`the implementation ${this.exitInfo}, but a process it started still holds its stdout; its process group was stopped`), 1000);
        timer.unref();
        this.child.once('close', () => clearTimeout(timer));
      });
    });
    this.child.once('close', () => {
      this.fail(`the implementation ${this.exitInfo ?? 'closed its stdout'}`);
      // The direct child is gone; anything left in its group is stopped too.
      void this.stopGroup();
    });
    this.child.once('error', (e) => {
      this.fail(`cannot start the implementation \`${command}\`: ${e.message}`);
      untrack(this);
    });
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
    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stdout!.on('end', () => {
      if (this.partialBytes > 0 && this.broken === null) this.onLine(this.takeLine(Buffer.alloc(0)));
    });
  }

  /** The child's process group id (its pid), if it started. */
  get pgid(): number | undefined {
    return this.child.pid;
  }

  /** Send `signal` to every process of the child's group (whether or not the direct child has exited). */
  signalGroup(signal: NodeJS.Signals): void {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    try {
      process.kill(-pgid, signal);
    } catch {
      /* the group is empty */
    }
  }

  /**
   * Stop the child's whole process group: SIGTERM, then SIGKILL to whatever is left after the grace period;
   * resolves when the group is empty (or a second after SIGKILL). Idempotent.
   */
  stopGroup(): Promise<void> {
    this.stopping ??= (async () => {
      const pgid = this.child.pid;
      if (pgid !== undefined && groupAlive(pgid)) {
        this.signalGroup('SIGTERM');
        for (let waited = 0; waited < this.graceS && groupAlive(pgid); waited += 0.05) await sleep(0.05);
        if (groupAlive(pgid)) this.signalGroup('SIGKILL');
        for (let waited = 0; waited < 1 && groupAlive(pgid); waited += 0.05) await sleep(0.05);
      }
      // Nothing more is read from a stopped group: release the pipes so that they cannot keep the checker alive.
      this.child.stdout?.destroy();
      this.child.stderr?.destroy();
      this.child.stdin?.destroy();
      untrack(this);
    })();
    return this.stopping;
  }

  /** The last lines of the child's stderr, indented, for error messages. */
  stderrNote(): string {
    const tail = this.stderrTail.trimEnd();
    if (tail === '') return this.opts.inheritStderr ? '' : '\n  (it wrote nothing to stderr)';
    const lines = tail.split('\n').slice(-15);
    return `\n  its stderr ended with:\n${lines.map((l) => `    | ${l}`).join('\n')}`;
  }

  /**
   * Break the session: reject everything pending, and every later call, with this reason, and stop the child's
   * process group. `withStderr` appends the end of its stderr (useful when it crashed, noise when it broke a limit).
   */
  private fail(reason: string, withStderr = true): void {
    if (this.broken === null) this.broken = new ImplError(reason);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ImplError(`${p.op} (request ${id}): ${reason}${withStderr ? this.stderrNote() : ''}`));
    }
    this.pending.clear();
    void this.stopGroup();
  }

  /** The buffered start of a line plus `end` (and the buffer emptied). */
  private takeLine(end: Buffer): Buffer {
    const line = this.partial.length === 0 ? end : Buffer.concat([...this.partial, end]);
    this.partial = [];
    this.partialBytes = 0;
    return line;
  }

  /** Split stdout into lines, refusing any longer than the cap before it is held in memory whole. */
  private onData(chunk: Buffer): void {
    let start = 0;
    while (this.broken === null) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (this.partialBytes + piece.length > this.maxLineBytes) {
        this.lineNo++;
        this.fail(`line ${this.lineNo} of its stdout is longer than ${formatBytes(this.maxLineBytes)}, the most one answer may take (MAX_LINE_BYTES); it was refused unread`, false);
        return;
      }
      if (nl < 0) {
        if (piece.length > 0) {
          this.partial.push(Buffer.from(piece));
          this.partialBytes += piece.length;
        }
        return;
      }
      this.onLine(this.takeLine(piece));
      start = nl + 1;
    }
  }

  private onLine(bytes: Buffer): void {
    this.lineNo++;
    if (jsonDepth(bytes, MAX_LINE_DEPTH) > MAX_LINE_DEPTH) {
      this.fail(`line ${this.lineNo} of its stdout is nested more than ${MAX_LINE_DEPTH} levels deep: a message holds at most 3 levels of objects around tensors of rank ≤ ${MAX_TENSOR_RANK}; it was refused unparsed`, false);
      return;
    }
    const line = bytes.toString('utf8').replace(/\r$/, '');
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

  /** Close stdin, give the child 3 s to exit by itself, then stop whatever is left of its process group. */
  async close(): Promise<void> {
    this.broken ??= new ImplError('the session was closed');
    if (this.exitInfo === null && this.child.pid !== undefined) {
      this.child.stdin!.end();
      await Promise.race([this.exited, sleep(3)]);
    }
    await this.stopGroup();
  }
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
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
    helloMsg = await conn.request('hello', { protocol: PROTOCOL_VERSION, checker: opts.checker ?? 'ddpm-spec check', ops: [...OP_NAMES] }, {}, opts.helloTimeoutS ?? timeoutS);
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
  const { name, ops, notes, precision, cdf } = hello.data.hello;
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
    cdf,
    pgid: conn.pgid,
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
