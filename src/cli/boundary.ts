/**
 * The CLI's one error boundary: every failure becomes one line on stderr and an exit code from the table in
 * `common.ts`.
 *
 * Expected failures are typed ({@link UsageError}, `FormatError`, `BackendError`, {@link SystemError}, system
 * errno errors) and print `ddpm-spec <command>: <file or option>: <field>: <problem>`. Anything else is a bug:
 * one line with the error's first line and the file the full report (stack, arguments, versions) was written to,
 * or the stack itself with `--debug`. A line never exceeds {@link MAX_LINE_BYTES} bytes and never carries raw
 * control characters (NULs from a binary header are shown as `\x00`); library source code (a minified bundle
 * printed by Node's default handler) never reaches the terminal because nothing escapes this boundary.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { BackendError } from '../backend.ts';
import { FormatError } from '../formats/errors.ts';
import { isSystemErrno, SystemError } from '../io/errors.ts';
import { EXIT, UsageError } from './common.ts';

/** The longest line the boundary prints (bytes of UTF-8, the newline excluded). */
export const MAX_LINE_BYTES = 2000;

/**
 * `s` as one printable line: line breaks become "; ", other control characters `\xNN`, runs of blanks one
 * space, and the result is cut to `maxBytes` bytes of UTF-8 with a note of how much was cut.
 */
export function oneLine(s: string, maxBytes = MAX_LINE_BYTES): string {
  const flat = s
    .replace(/\s*[\r\n]+\s*/g, '; ')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[ \t]+/g, ' ')
    .trim();
  if (Buffer.byteLength(flat, 'utf8') <= maxBytes) return flat;
  // cut the UTF-8 bytes, then drop a character the cut split (decoded as U+FFFD)
  const cut = Buffer.from(flat, 'utf8')
    .subarray(0, maxBytes - 40)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  return `${cut} … (${flat.length - cut.length} more characters)`;
}

/** Is `e` the backend running out of memory (the wasm heap's `Aborted()`, a failed buffer allocation)? */
function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const m = e.message;
  // wasm's 32-bit heap: an allocation past 4 GiB aborts, or wraps an offset and faults on access
  return /^Aborted\(/.test(m) || /Array buffer allocation failed|Invalid typed array length|out of memory|Cannot enlarge memory|memory access out of bounds/i.test(m);
}

/** How one failure is shown: the exit code and the line after `ddpm-spec <command>: `. */
export interface Rendered {
  code: number;
  line: string;
  /** Only for internal errors: the full report (stack, cause chain). */
  report?: string;
}

/** Classify a failure and phrase it (see the module documentation). */
export function renderFailure(e: unknown): Rendered {
  if (e instanceof UsageError || e instanceof FormatError || e instanceof BackendError) return { code: EXIT.badInput, line: oneLine(e.message) };
  if (e instanceof SystemError) return { code: EXIT.system, line: oneLine(e.message) };
  if (isSystemErrno(e)) {
    const where = e.path ?? (e.syscall ? `${e.syscall}()` : 'a file operation');
    const what = e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '').replace(/, \w+$/, '');
    return { code: EXIT.system, line: oneLine(`${where}: ${what} (${e.code})`) };
  }
  if (isOutOfMemory(e)) {
    return {
      code: EXIT.system,
      line: oneLine(`out of memory: the backend could not allocate what this run needs (${(e as Error).message.split('\n')[0].slice(0, 120)}); use a smaller batch, or --micro-batch`),
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const chain: string[] = [];
  for (let c: unknown = err, i = 0; c !== undefined && c !== null && i < 8; c = (c as { cause?: unknown }).cause, i++) {
    chain.push(c instanceof Error ? (c.stack ?? `${c.name}: ${c.message}`) : String(c));
  }
  return { code: EXIT.internal, line: oneLine(`internal error: ${err.name}: ${err.message.split('\n')[0].slice(0, 300)}`), report: chain.join('\nCaused by: ') };
}

/** Write an internal error's report to a file in the temporary directory; returns its path, or null. */
function writeReport(command: string, argv: string[], report: string): string | null {
  const path = join(tmpdir(), `ddpm-spec-${command}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.txt`);
  try {
    writeFileSync(path, `ddpm-spec ${argv.slice(2).join(' ')}\nnode ${process.version} ${process.platform} ${process.arch}\n\n${report}\n`);
    return path;
  } catch {
    return null;
  }
}

/**
 * Print a failure of `command` as one line (plus the stack with `debug`) on `stderr`; returns the exit code.
 * A commander parse error has already been printed by commander.
 */
export function reportFailure(e: unknown, command: string, argv: string[], debug: boolean, stderr: { write(s: string): unknown } = process.stderr): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
  const r = renderFailure(e);
  const prefix = `ddpm-spec${command ? ` ${command}` : ''}: `;
  if (r.report === undefined) {
    stderr.write(`${prefix}${r.line}\n`);
    return r.code;
  }
  if (debug) {
    stderr.write(`${prefix}${r.line}\n${r.report}\n`);
    return r.code;
  }
  const file = writeReport(command || 'cli', argv, r.report);
  stderr.write(`${prefix}${r.line} (${file ? `full report in ${file}` : 'the report could not be written'}; rerun with --debug to print it)\n`);
  return r.code;
}
