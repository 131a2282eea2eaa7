/**
 * Operator-mutation sampling of `spec/`: how many small faults in the maths do the spec's own properties catch?
 *
 * Not part of the library. Usage (from the repository root; CPU heavy, one test run per mutant):
 *
 *   node --import tsx tools/mutate-spec.ts [--n 40] [--seed 1] [--timeout 600] [--out mutants.json] [--list]
 *
 * It lists every mutation site of `spec/**\/*.ts` (index files aside), parsed with the TypeScript parser so that
 * comments, strings and types are never touched:
 *
 * - arithmetic operators: + ↔ −, * ↔ /, ** → *;
 * - comparisons: < ↔ <=, > ↔ >=, === ↔ !==;
 * - unary minus removed;
 * - numeric constants tweaked: an integer n → n + 1, any other number x → 1.1·x.
 *
 * Then it draws `--n` sites with a seeded generator, applies each mutation in turn to its file, runs the spec's
 * property folders (`properties/probability`, `properties/gaussian`, `properties/ddpm`, one worker, stopping at
 * the first failure; the folder nearest the mutated file first, so that a kill is found soonest; with the light
 * configuration `tools/mutate-spec.vitest.config.ts`: no tfjs, modules shared between files), restores the file, and reports each mutant as killed (some property failed), survived, or
 * timed out (counted as killed: the mutant broke termination), with the kill rate. The unmutated tree runs first:
 * it must pass, and a mutant counts as survived only if as many properties passed as there; one whose runs passed
 * fewer (a file that crashed before reporting, a suite skipped) is `incomplete`, listed apart and left out of the rate. `--list` prints the sites
 * only. The files are always restored, also on Ctrl-C (the handler runs once the current test run ends; kill that
 * run to stop at once). A lock file refuses a second run in the same tree.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { Rng } from '../src/numeric/rng.ts';

export interface Mutation {
  file: string;
  line: number;
  start: number;
  end: number;
  from: string;
  to: string;
  kind: 'operator' | 'comparison' | 'unary' | 'constant';
}

const SWAP: Partial<Record<ts.SyntaxKind, [string, Mutation['kind']]>> = {
  [ts.SyntaxKind.PlusToken]: ['-', 'operator'],
  [ts.SyntaxKind.MinusToken]: ['+', 'operator'],
  [ts.SyntaxKind.AsteriskToken]: ['/', 'operator'],
  [ts.SyntaxKind.SlashToken]: ['*', 'operator'],
  [ts.SyntaxKind.AsteriskAsteriskToken]: ['*', 'operator'],
  [ts.SyntaxKind.LessThanToken]: ['<=', 'comparison'],
  [ts.SyntaxKind.LessThanEqualsToken]: ['<', 'comparison'],
  [ts.SyntaxKind.GreaterThanToken]: ['>=', 'comparison'],
  [ts.SyntaxKind.GreaterThanEqualsToken]: ['>', 'comparison'],
  [ts.SyntaxKind.EqualsEqualsEqualsToken]: ['!==', 'comparison'],
  [ts.SyntaxKind.ExclamationEqualsEqualsToken]: ['===', 'comparison'],
};

function tweak(text: string): string | undefined {
  const v = Number(text.replace(/_/g, ''));
  if (!Number.isFinite(v)) return undefined;
  return Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? String(v + 1) : String(v * 1.1);
}

/** Every mutation site of one source file. */
export function mutationSites(file: string, text: string): Mutation[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Mutation[] = [];
  const line = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (n: ts.Node): void => {
    if (ts.isTypeNode(n) || ts.isEnumDeclaration(n) || ts.isImportDeclaration(n)) return;
    if (ts.isBinaryExpression(n)) {
      const op = n.operatorToken;
      const swap = SWAP[op.kind];
      // A string concatenation is not arithmetic: skip + when either side is a string or template literal.
      const stringy = (e: ts.Expression) => ts.isStringLiteralLike(e) || ts.isTemplateExpression(e);
      if (swap && !(op.kind === ts.SyntaxKind.PlusToken && (stringy(n.left) || stringy(n.right)))) {
        out.push({ file, line: line(op.getStart()), start: op.getStart(), end: op.getEnd(), from: op.getText(), to: swap[0], kind: swap[1] });
      }
    } else if (ts.isPrefixUnaryExpression(n) && n.operator === ts.SyntaxKind.MinusToken) {
      out.push({ file, line: line(n.getStart()), start: n.getStart(), end: n.getStart() + 1, from: '-', to: '', kind: 'unary' });
    } else if (ts.isNumericLiteral(n)) {
      const to = tweak(n.text);
      if (to !== undefined) out.push({ file, line: line(n.getStart()), start: n.getStart(), end: n.getEnd(), from: n.getText(), to, kind: 'constant' });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The spec's source files, index files aside (they only re-export). */
export function specFiles(root: string): string[] {
  return readdirSync(join(root, 'spec'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('index.ts'))
    .map((f) => join('spec', f))
    .sort();
}

/** `n` distinct sites drawn uniformly with a seeded generator (all of them if there are fewer). */
export function sample<T>(xs: readonly T[], n: number, seed: number): T[] {
  const rng = new Rng(seed);
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, Math.min(n, xs.length)).map((i) => xs[i]);
}

/** The spec's own property folders, and the one nearest to each spec folder (spec/linalg.ts → gaussian). */
const FOLDERS = ['properties/probability', 'properties/gaussian', 'properties/ddpm'];
const NEAREST_FOLDER: Record<string, string> = { probability: 'probability', gaussian: 'gaussian', ddpm: 'ddpm', 'linalg.ts': 'gaussian' };

interface Report {
  numPassedTests: number;
  testResults: { assertionResults: { status: string; title: string }[] }[];
}

/** A vitest JSON report, or undefined when the run wrote none (it crashed before reporting). */
function readReport(report: string): Report | undefined {
  try {
    return JSON.parse(readFileSync(report, 'utf8')) as Report;
  } catch {
    return undefined;
  }
}

/** The id of the first failed test in a vitest JSON report, if any. */
function firstFailure(r: Report | undefined): string | undefined {
  const t = r?.testResults.flatMap((f) => f.assertionResults).find((a) => a.status === 'failed');
  return t ? (/\[([^\]]+)\]\s*$/.exec(t.title)?.[1] ?? t.title) : undefined;
}

/**
 * How a mutant's runs end. A run that exits 0 proves nothing unless every test of the unmutated tree ran and
 * passed: a survivor that passed fewer tests than the baseline (a suite skipped, a file that never reported) is
 * `incomplete`, not `survived`, and is listed apart so that it is looked at rather than counted.
 */
export function classify(runs: { status: number | null; signal: string | null; error?: Error; passed?: number }[], baseline: number): 'killed' | 'survived' | 'timeout' | 'incomplete' {
  const last = runs[runs.length - 1];
  if (last.error || last.signal) return 'timeout';
  if (last.status !== 0) return 'killed';
  const passed = runs.reduce((a, r) => a + (r.passed ?? 0), 0);
  return passed === baseline ? 'survived' : 'incomplete';
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.mutate-tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '40' },
      seed: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '600' },
      out: { type: 'string' },
      list: { type: 'boolean', default: false },
    },
  });
  const n = Number(values.n);
  const seed = Number(values.seed);
  const timeoutS = Number(values.timeout);
  for (const [name, v] of [['--n', n], ['--seed', seed], ['--timeout', timeoutS]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`mutate-spec: ${name} must be a non-negative integer, got ${String(v)}`);
  }
  const root = process.cwd();
  const all = specFiles(root).flatMap((f) => mutationSites(f, readFileSync(join(root, f), 'utf8')));
  const chosen = sample(all, n, seed);
  process.stdout.write(`mutate-spec: ${all.length} sites in ${specFiles(root).length} files; sampling ${chosen.length} (seed ${seed})\n`);
  if (values.list) {
    for (const m of chosen) process.stdout.write(`${m.file}:${m.line}  ${m.from} → ${m.to || '(removed)'}  [${m.kind}]\n`);
    return;
  }
  // One run per tree: two runs mutating the same files would see each other's mutants.
  const lock = join(root, '.mutate-spec.lock');
  try {
    closeSync(openSync(lock, 'wx'));
  } catch {
    throw new Error(`mutate-spec: ${lock} exists: another run is mutating this tree (delete the file if none is)`);
  }
  process.on('exit', () => rmSync(lock, { force: true }));
  const report = join(tmpdir(), `mutate-spec-${process.pid}.json`);
  const originals = new Map<string, string>();
  const restore = () => {
    for (const [f, text] of originals) writeAtomically(join(root, f), text);
  };
  process.on('SIGINT', () => {
    restore();
    process.exit(130);
  });
  const results: (Mutation & { status: ReturnType<typeof classify>; seconds: number; passed: number; failed?: string })[] = [];
  const vitest = (folders: string[], timeoutMs: number) => {
    rmSync(report, { force: true });
    const r = spawnSync('npx', ['vitest', 'run', '--config', 'tools/mutate-spec.vitest.config.ts', ...folders, '--bail=1', '--reporter=json', `--outputFile=${report}`], {
      cwd: root,
      encoding: 'utf8',
      timeout: Math.max(1000, timeoutMs),
      killSignal: 'SIGKILL',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    const rep = readReport(report);
    return { status: r.status, signal: r.signal, error: r.error, passed: rep?.numPassedTests, failed: firstFailure(rep) };
  };
  // The unmutated tree first: every property must pass, and the number that pass is what a survivor must match.
  const t00 = Date.now();
  const base = vitest(FOLDERS, timeoutS * 1000);
  if (base.status !== 0 || base.passed === undefined) throw new Error(`mutate-spec: the unmutated tree does not pass (${base.failed ?? `exit ${String(base.status)}`}); fix it before sampling mutants`);
  process.stdout.write(`baseline: ${base.passed} properties pass in ${((Date.now() - t00) / 1000).toFixed(0)} s\n`);
  try {
    chosen.forEach((m, i) => {
      const path = join(root, m.file);
      const original = originals.get(m.file) ?? readFileSync(path, 'utf8');
      originals.set(m.file, original);
      writeAtomically(path, original.slice(0, m.start) + m.to + original.slice(m.end));
      const t0 = Date.now();
      // The folder of the mutated area first (a kill there is found soonest), then the other two; stop at a kill.
      const near = `properties/${NEAREST_FOLDER[m.file.split('/')[1]] ?? 'ddpm'}`;
      const runs: ReturnType<typeof vitest>[] = [];
      for (const folders of [[near], FOLDERS.filter((f) => f !== near)]) {
        const r = vitest(folders, timeoutS * 1000 - (Date.now() - t0));
        runs.push(r);
        if (r.error || r.signal || r.status !== 0) break;
      }
      writeAtomically(path, original);
      const seconds = (Date.now() - t0) / 1000;
      const status = classify(runs, base.passed!);
      const passed = runs.reduce((a, r) => a + (r.passed ?? 0), 0);
      const failed = runs[runs.length - 1].failed;
      results.push({ ...m, status, seconds, passed, failed });
      process.stdout.write(`${String(i + 1).padStart(3)}/${chosen.length}  ${status.padEnd(10)} ${m.file}:${m.line}  ${m.from} → ${m.to || '(removed)'}  [${m.kind}]${failed ? `  first failure: ${failed}` : ''}  (${passed} passed, ${seconds.toFixed(0)} s)\n`);
    });
  } finally {
    restore();
  }
  const killed = results.filter((r) => r.status === 'killed' || r.status === 'timeout').length;
  const judged = results.filter((r) => r.status !== 'incomplete').length;
  process.stdout.write(`\n${killed} of ${judged} mutants killed (${((100 * killed) / Math.max(1, judged)).toFixed(1)} %)\n`);
  for (const r of results.filter((x) => x.status === 'survived' || x.status === 'incomplete')) {
    process.stdout.write(`${r.status}: ${r.file}:${r.line}  ${r.from} → ${r.to || '(removed)'}  (${r.passed} of ${base.passed} passed)\n`);
  }
  if (values.out) writeAtomically(values.out, `${JSON.stringify({ seed, sites: all.length, results }, null, 2)}\n`);
}

if (relative(process.cwd(), process.argv[1] ?? '') === join('tools', 'mutate-spec.ts') || process.argv[1]?.endsWith('tools/mutate-spec.ts')) main();
