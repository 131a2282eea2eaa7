/**
 * `npm run test:seeds -- N [--all] [PATH…]`: run properties under N random 32-bit fast-check seeds, one vitest
 * run per seed, and print each failing seed with the command that replays it. A property that fails under some
 * seed is a defect; this is how to find one before a user does.
 *
 * By default it runs the spec and numeric properties (`properties/numeric`, `probability`, `gaussian`, `ddpm`:
 * every fast-check law of the maths, without the slow tfjs files); `--all` runs the whole suite, and explicit
 * paths run those. The backend is the usual one (`DDPM_BACKEND` applies). Each seed prints one line; a failing
 * seed also prints the failing tests and keeps the full log. Exit code 0 when every seed passes, 1 when one
 * fails, 2 for bad arguments.
 */
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The spec and numeric properties: every fast-check law of the maths, quick enough for many seeds. */
export const SPEC_PATHS = ['properties/numeric', 'properties/probability', 'properties/gaussian', 'properties/ddpm'];

const USAGE = 'usage: npm run test:seeds -- N [--all | PATH…]   (N random 32-bit fast-check seeds, 1 ≤ N ≤ 10000)';

export interface SeedsArgs {
  runs: number;
  /** Test paths handed to vitest; empty means the whole suite. */
  paths: string[];
}

/** Parse the arguments; throws a one-line error naming the argument and what was expected. */
export function parseSeedsArgs(argv: readonly string[]): SeedsArgs {
  const all = argv.includes('--all');
  const rest = argv.filter((a) => a !== '--all');
  const flag = rest.find((a) => a.startsWith('-'));
  if (flag !== undefined) throw new Error(`test:seeds: unknown option ${flag}; ${USAGE}`);
  const [count, ...paths] = rest;
  const runs = Number(count);
  if (count === undefined || !Number.isInteger(runs) || runs < 1 || runs > 10000) {
    throw new Error(`test:seeds: N must be an integer from 1 to 10000, got ${count === undefined ? 'nothing' : JSON.stringify(count)}; ${USAGE}`);
  }
  if (all && paths.length > 0) throw new Error(`test:seeds: --all and paths (${paths.join(' ')}) exclude each other; ${USAGE}`);
  return { runs, paths: all ? [] : paths.length > 0 ? paths : SPEC_PATHS };
}

/** A random seed in the whole signed 32-bit range, the form `FC_SEED` is reduced to (see `seed.ts`). */
export function randomSeed(): number {
  return randomInt(-(2 ** 31), 2 ** 31);
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * What failed, from a vitest log: the tests on its `FAIL` lines (de-duplicated), or else its first error line
 * (a run that stopped before any test, e.g. the set-up's `ddpm-spec test run: …` line).
 */
export function failureLines(log: string): string[] {
  const lines = log.replace(/\u001b\[[0-9;]*m/g, '').split('\n');
  const tests = [...new Set(lines.filter((l) => /^\s*FAIL\s/.test(l)).map((l) => l.trim().replace(/^FAIL\s+/, '')))];
  if (tests.length > 0) return tests;
  const error = lines.find((l) => /^\s*(\w*Error\b.*:|ddpm-spec test run: )/.test(l));
  return [error === undefined ? 'no FAIL line and no error line: see the full log' : error.trim()];
}

function main(): number {
  let args: SeedsArgs;
  try {
    args = parseSeedsArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const vitest = join(root, 'node_modules/.bin/vitest');
  const what = args.paths.length === 0 ? 'the whole suite' : args.paths.join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'ddpm-seeds-'));
  process.stdout.write(`test:seeds: ${what} under ${args.runs} random fast-check seed(s), backend ${process.env.DDPM_BACKEND ?? 'chosen automatically'}\n`);
  const bad: number[] = [];
  for (let i = 0; i < args.runs; i++) {
    const seed = randomSeed();
    const counts = join(dir, 'counts.jsonl');
    writeFileSync(counts, '');
    const t0 = Date.now();
    const r = spawnSync(vitest, ['run', ...args.paths], {
      cwd: root,
      env: { ...process.env, FC_SEED: String(seed), DDPM_COUNTS_FILE: counts, NO_COLOR: '1', FORCE_COLOR: '0' },
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const line = readFileSync(counts, 'utf8').trim();
    const c: Counts = line === '' ? { passed: 0, failed: 1, skipped: 0 } : (JSON.parse(line.split('\n').pop()!) as Counts);
    const ok = r.status === 0 && c.failed === 0;
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    process.stdout.write(`  [${i + 1}/${args.runs}] FC_SEED=${seed}: ${c.passed} passed, ${c.failed} failed (${secs} s)${ok ? '' : '  FAILED'}\n`);
    if (!ok) {
      bad.push(seed);
      const logFile = join(dir, `seed-${seed}.log`);
      writeFileSync(logFile, log);
      for (const l of failureLines(log)) process.stdout.write(`      ${l}\n`);
      process.stdout.write(`      replay: FC_SEED=${seed} npx vitest run ${args.paths.join(' ')}`.trimEnd() + `\n      full log: ${logFile}\n`);
    }
  }
  process.stdout.write(
    bad.length === 0
      ? `test:seeds: all ${args.runs} seed(s) passed\n`
      : `test:seeds: ${bad.length} of ${args.runs} seed(s) failed: ${bad.map((s) => `FC_SEED=${s}`).join(', ')} (logs in ${dir})\n`,
  );
  if (bad.length === 0) rmSync(dir, { recursive: true, force: true });
  return bad.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main();
