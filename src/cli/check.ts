/**
 * `ddpm-spec check`: validate a DDPM implementation against the golden data of the reference code and the laws
 * of the spec.
 *
 * - No arguments: our tfjs reference (on the default backend) against every golden folder under `golden/`
 *   and every law.
 * - `--golden DIR`: any folder of files in the `golden/upstream` formats (configurations, shapes and timesteps
 *   are read from the files; a file, record or field no reader knows is listed as not understood; a malformed
 *   record is an error row naming the file, the record and the field, and the other records are still checked).
 * - `--impl CMD`: another implementation, run as a child process that speaks the protocol of
 *   `src/conformance/protocol.ts` (JSON lines over stdin/stdout; see docs/conformance.md).
 *
 * Prints a table (file, case, quantity, max |Δ|, max relative error, tolerance and its reason, verdict) and the
 * coverage and the verdict; `--json FILE` writes the whole report. Exit code 0 for OK, 1 for NOT OK (something
 * failed or errored), 3 for INCOMPLETE (something declined or not understood), 2 for bad usage. The engine is
 * `src/conformance/engine.ts`.
 *
 * @module
 */
import type { Command } from 'commander';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCheck, type CheckOptions } from '../conformance/engine.ts';
import { EXIT_CODES, formatTable, writeReportJson } from '../conformance/report.ts';
import { UsageError, type ExitCode } from './common.ts';

export { DEFAULT_GOLDEN, runCheck, type CheckOptions } from '../conformance/engine.ts';

/** Options of the command line. */
interface CliOptions {
  golden?: string;
  impl?: string;
  builtin?: string;
  backend?: string;
  json?: string;
  laws: boolean;
  goldenCases: boolean;
  only?: string[];
  failures?: boolean;
  timeout?: string;
  seed?: string;
  color?: boolean;
}

const positive = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new UsageError(`${name} must be a positive number of seconds, got ${JSON.stringify(v)}`);
  // Node's timers hold at most 2³¹ − 1 ms; a longer one fires at once.
  if (x > 2147483) throw new UsageError(`${name} must be at most 2147483 seconds (24.8 days), got ${JSON.stringify(v)}`);
  return x;
};

/**
 * `--json FILE` is written after the whole run: check before the run that it can be. Its folder exists, is
 * writable and is not on a kernel pseudo-filesystem (/proc, /sys, /dev, where no file can be kept), and FILE is
 * not something other than a regular file.
 */
function checkJsonDestination(file: string): void {
  const dir = dirname(resolve(file));
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new UsageError(`--json ${file}: the folder ${dir} ${st ? 'is not a folder' : 'does not exist'}`);
  const real = realpathSync(dir);
  if (/^\/(proc|sys|dev)(\/|$)/.test(real) && !/^\/dev\/shm(\/|$)/.test(real)) {
    throw new UsageError(`--json ${file}: ${real} is on a pseudo-filesystem of the kernel, where the report cannot be kept; choose a folder on a disk`);
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--json ${file}: the folder ${dir} is not writable`);
  }
  const target = statSync(file, { throwIfNoEntry: false });
  if (target && !target.isFile()) throw new UsageError(`--json ${file}: exists and is not a regular file`);
}

/** Run `check` as the command line does: print the table, write the JSON, return the exit code. */
export async function checkCommand(o: CliOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  if (o.builtin !== undefined && o.builtin !== 'reference' && o.builtin !== 'spec') throw new UsageError(`--builtin must be reference or spec, got ${JSON.stringify(o.builtin)}`);
  if (o.impl !== undefined && o.builtin !== undefined) throw new UsageError('--impl and --builtin exclude each other: --impl checks another implementation, --builtin one of ours');
  if (!o.laws && !o.goldenCases) throw new UsageError('--no-laws and --no-golden together leave nothing to check');
  if (o.backend !== undefined && (o.impl !== undefined || o.builtin === 'spec')) throw new UsageError('--backend chooses the tfjs backend of the built-in reference; it does not apply to --impl or --builtin spec');
  const seed = o.seed === undefined ? undefined : Number(o.seed);
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${JSON.stringify(o.seed)}`);
  if (o.json !== undefined) checkJsonDestination(o.json);
  const tty = err.isTTY === true;
  let stage = '';
  let n = 0;
  const progress = (): void => {
    if (tty) err.write(`\r\u001b[2Kchecking ${stage}: ${n} rows`);
  };
  const report = await runCheck({
    golden: o.golden,
    impl: o.impl,
    builtin: o.builtin as CheckOptions['builtin'],
    backend: o.backend,
    laws: o.laws,
    goldenCases: o.goldenCases,
    only: o.only,
    timeoutS: positive('--timeout', o.timeout),
    seed,
    onStage: (s) => {
      stage = s;
      progress();
    },
    onRow: () => {
      n++;
      if (n % 25 === 0) progress();
    },
  });
  if (tty) err.write('\r\u001b[2K');
  const color = o.color !== false && (out as NodeJS.WriteStream).isTTY === true && !process.env.NO_COLOR;
  out.write(formatTable(report, { color, failuresOnly: o.failures }));
  if (o.json) {
    writeReportJson(o.json, report);
    out.write(`report written to ${o.json}\n`);
  }
  return EXIT_CODES[report.verdict];
}

export function registerCheck(program: Command, code: ExitCode): void {
  program
    .command('check')
    .description('validate a DDPM implementation against the golden data of the reference code and the laws of the spec')
    .option('--golden <dir>', 'folder of golden files in the golden/upstream formats (default: the package\'s golden/, every sub-folder)')
    .option('--impl <command>', 'check the implementation this command starts: it speaks the protocol of docs/conformance.md on stdin/stdout')
    .option('--builtin <name>', 'check one of ours instead: reference (tfjs, float32; the default) or spec (float64)')
    .option('--backend <name>', 'tfjs backend for the built-in reference: tensorflow, webgpu, wasm or cpu (default: automatic, or DDPM_BACKEND)')
    .option('--json <file>', 'also write the full report as JSON to this file (atomically)')
    .option('--no-laws', 'skip the laws of the spec')
    .option('--no-golden', 'skip the golden cases (run only the laws)')
    .option('--only <names...>', 'only golden files whose name contains one of these strings')
    .option('--failures', 'print the failures and the summary, without the table of every row')
    .option('--timeout <seconds>', 'seconds to wait for the handshake and for each answer of --impl (default 120)')
    .option('--seed <int>', 'seed of the laws\' random inputs (default 0)')
    .option('--no-color', 'no colours in the table')
    .action(async (opts: Omit<CliOptions, 'goldenCases' | 'golden'> & { golden?: string | boolean }) => {
      // commander maps --golden <dir> and --no-golden onto one key: a string is the folder, false means "skip".
      const golden = typeof opts.golden === 'string' ? opts.golden : undefined;
      const goldenCases = opts.golden !== false;
      code.value = await checkCommand({ ...opts, golden, goldenCases });
    });
}
