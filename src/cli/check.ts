/**
 * `ddpm-spec check`: validate a DDPM implementation against the golden data of the reference code and the laws
 * of the spec.
 *
 * - No arguments: our tfjs reference (on the default backend) against every golden folder under `golden/`
 *   and every law.
 * - `--golden DIR`: any folder of files in the `golden/upstream` formats (configurations, shapes and timesteps
 *   are read from the files; files no reader knows are listed as skipped; a malformed file is an error naming
 *   the file and the field).
 * - `--impl CMD`: another implementation, run as a child process that speaks the protocol of
 *   `src/conformance/protocol.ts` (JSON lines over stdin/stdout; see docs/conformance.md).
 *
 * Prints a table (file, case, quantity, max |Δ|, max relative error, tolerance and its reason, verdict) and the
 * totals; `--json FILE` writes the whole report. Exit code 0 when nothing failed, 1 when something failed or
 * errored, 2 for bad usage or malformed data.
 *
 * @module
 */
import type { Command } from 'commander';
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../backend.ts';
import { OP_NAMES, type DiffusionOps } from '../conformance/ops.ts';
import { connectStdio, ImplError, OpUnsupported, type StdioOps } from '../conformance/impl/stdio.ts';
import { LAWS_FILE, runLaws } from '../conformance/laws.ts';
import { formatTable, passed, totals, writeReportJson, type Report, type ReportRow, type SkippedFile } from '../conformance/report.ts';
import { UNET_SKIP, loadGolden, replay, skippedRows, type Row } from '../golden/index.ts';
import { compareCheck } from '../golden/compare.ts';
import { readJson, tensorAt, valueAt } from '../formats/jsonTensor.ts';
import { readSafetensors } from '../formats/safetensors.ts';
import { override } from '../numeric/tolerance.ts';
import { UsageError, type ExitCode } from './common.ts';

/** The package's own golden data (every folder under it is checked). */
export const DEFAULT_GOLDEN = fileURLToPath(new URL('../../golden/', import.meta.url));

/** What `check` was asked to do. */
export interface CheckOptions {
  /** Golden folder (default {@link DEFAULT_GOLDEN}); its sub-folders are checked too. */
  golden?: string;
  /** Command line of an implementation speaking the protocol. */
  impl?: string;
  /** Built-in implementation when `impl` is not given: `reference` (tfjs, default) or `spec` (float64). */
  builtin?: 'reference' | 'spec';
  /** tfjs backend for the built-in reference. */
  backend?: string;
  /** Run the golden cases (default true). */
  goldenCases?: boolean;
  /** Run the laws of the spec (default true). */
  laws?: boolean;
  /** Only golden files whose name contains one of these substrings. */
  only?: string[];
  /** Seconds per operation for `impl` (default 120). */
  timeoutS?: number;
  /** Seed of the laws' inputs (default 0). */
  seed?: number;
  /** Called with each row as it is made (progress). */
  onRow?: (r: ReportRow) => void;
  /** Called when a new golden file or the laws start (progress). */
  onStage?: (what: string) => void;
}

/** Every folder under `root` (itself included) that holds files, in name order; `generators/` holds code, not data. */
function goldenFolders(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    if (entries.some((e) => e.isFile())) out.push(dir);
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'generators') walk(join(dir, e.name));
  };
  walk(root);
  return out;
}

/** A golden replay row as a report row (OpUnsupported errors count as skipped: the implementation said so). */
function goldenRow(r: Row, prefix: string): ReportRow {
  const unsupported = r.verdict === 'error' && r.detail.startsWith(`${OpUnsupported.name}:`);
  const num = (x: number): number | null => (Number.isFinite(x) && r.verdict !== 'skip' && r.verdict !== 'error' ? x : null);
  return {
    kind: 'golden',
    file: `${prefix}${r.file}`,
    case: r.case,
    quantity: r.quantity,
    op: r.op,
    verdict: unsupported ? 'skip' : r.verdict,
    maxAbs: num(r.maxAbs),
    maxRel: num(r.maxRel),
    compared: r.compared,
    masked: r.masked,
    failures: r.failures,
    tolerance: r.tolerance === '' ? null : r.tolerance.replace(/\b(\d+(?:\.\d+)?)e([+-]?\d+)\b/g, (_m, a: string, b: string) => `${Number(a)}e${b}`),
    reason: r.reason === '' ? null : r.reason,
    detail: unsupported ? r.detail.slice(`${OpUnsupported.name}: `.length) : r.detail,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The UNet files (our tfjs reference only: the operation vocabulary has no network, so --impl cannot run them)
// ---------------------------------------------------------------------------------------------------------

const UNET_TOL = override({ rtol: 1e-4, atol: 1e-4 }, 'golden README: a float32 port of the UNet is within rtol 1e−4, atol 1e−4 of PyTorch (convolution summation order differs between backends)');
/** Hook names of the PyTorch port that are not module names, and what our forward pass calls them. */
const HOOK_RENAME: Record<string, string> = { 'get_timestep_embedding(t, ch)': 'timestep_embedding', output: 'conv_out' };

/**
 * Replay the UNet files of a folder with our reference: for every `<stem>_io.json` beside a `<stem>.safetensors`
 * state dict (configuration read from its metadata), the model output, every recorded activation
 * (`<stem>_activations.safetensors`) and every sampling run of `sampling_T<T>_<stem>.json`, step by step from the
 * reference code's own previous state, through the reference's sampling operations.
 */
async function replayUnetFiles(
  dir: string,
  impl: DiffusionOps,
  add: (r: Row) => void,
  only: ((f: string) => boolean) | undefined,
  onStage?: (s: string) => void,
): Promise<string[]> {
  const tf = await import('@tensorflow/tfjs');
  const { readStateDict } = await import('../../reference/unet/weights.ts');
  const { unetForward } = await import('../../reference/unet/model.ts');
  const { disposeParams } = await import('../../reference/unet/params.ts');
  const names = readdirSync(dir);
  const handled: string[] = [];
  const nhwc = (t: { shape: number[]; data: ArrayLike<number> }) => tf.tidy(() => tf.tensor(Float32Array.from(t.data), t.shape).transpose([0, 2, 3, 1]));
  const nchw = async (t: import('@tensorflow/tfjs').Tensor): Promise<{ shape: number[]; data: Float64Array }> => {
    const p = t.rank === 4 ? t.transpose([0, 3, 1, 2]) : t.clone();
    const out = { shape: [...p.shape], data: Float64Array.from(await p.data()) };
    p.dispose();
    return out;
  };
  for (const io of names.filter((n) => /_io\.json$/.test(n))) {
    const stem = io.slice(0, -'_io.json'.length);
    if (!names.includes(`${stem}.safetensors`)) continue;
    const wanted = (f: string): boolean => only?.(f) ?? true;
    const actsName = `${stem}_activations.safetensors`;
    const samplingFiles = names.filter((n) => n.startsWith('sampling_T') && n.endsWith(`_${stem}.json`) && /^sampling_T\d+_/.test(n));
    if (![io, actsName, ...samplingFiles].some(wanted)) continue;
    const { config, params } = readStateDict(join(dir, `${stem}.safetensors`));
    try {
      // The model output for the recorded input, with integer and float timesteps.
      onStage?.(io);
      const ioPath = join(dir, io);
      const runIo = wanted(io);
      const root = readJson(ioPath);
      const xIn = tensorAt(root, 'inputs.x', io);
      const tIn = tensorAt(root, 'inputs.t', io);
      const x = nhwc(xIn);
      const kase = `model(x, t) with the weights of ${stem}.safetensors, t = [${Array.from(tIn.data).join(',')}]`;
      for (const key of runIo ? Object.keys(valueAt(root, 'outputs', io) as object) : []) {
        const tt = tf.tensor1d(Array.from(tIn.data), /float/.test(key) ? 'float32' : 'int32');
        const y = unetForward(config, params, x as import('@tensorflow/tfjs').Tensor4D, tt);
        add({ file: io, case: kase, op: undefined, ...compareCheck(await nchw(y), { quantity: key, expected: tensorAt(root, `outputs[${JSON.stringify(key)}]`, io), tol: UNET_TOL }) });
        tf.dispose([y, tt]);
      }
      if (runIo) handled.push(`${stem}.safetensors`, io);
      // Every activation the port's forward hooks recorded for that input.
      if (names.includes(actsName) && wanted(actsName)) {
        onStage?.(actsName);
        const acts = readSafetensors(join(dir, actsName)).tensors;
        const got = new Map<string, import('@tensorflow/tfjs').Tensor>();
        const tt = tf.tensor1d(Array.from(tIn.data), 'int32');
        const y = unetForward(config, params, x as import('@tensorflow/tfjs').Tensor4D, tt, { capture: (n, v) => got.set(n, v) });
        got.set('input.x', x.clone());
        for (const [name, ref] of acts) {
          const ours = got.get(HOOK_RENAME[name] ?? name);
          const expected = { shape: [...ref.shape], data: Float64Array.from(ref.data as ArrayLike<number>) };
          const row = ours
            ? compareCheck(await nchw(ours), { quantity: name, expected, tol: UNET_TOL })
            : { ...compareCheck(undefined, { quantity: name, expected, tol: UNET_TOL }), detail: `the forward pass recorded no activation named ${HOOK_RENAME[name] ?? name}` };
          add({ file: actsName, case: `forward hooks for the input of ${io}`, op: undefined, ...row });
        }
        tf.dispose([y, tt, ...got.values()]);
        handled.push(actsName);
      }
      x.dispose();
      // Sampling runs with this model, one step at a time from the reference code's own state.
      for (const sf of samplingFiles.filter(wanted)) {
        onStage?.(sf);
        await replayUnetSampling(join(dir, sf), sf, config, params, impl, add);
        handled.push(sf);
      }
    } finally {
      disposeParams(params);
    }
  }
  return handled;

  async function replayUnetSampling(
    path: string,
    file: string,
    config: import('../../reference/unet/config.ts').UNetConfig,
    params: import('../../reference/unet/params.ts').UNetParams,
    ops: DiffusionOps,
    emit: (r: Row) => void,
  ): Promise<void> {
    const root = readJson(path);
    const args = valueAt(root, 'meta.args', file) as { beta_schedule: string; beta_start: number; beta_end: number; num_diffusion_timesteps: number };
    const T = args.num_diffusion_timesteps;
    const { betas } = await ops.schedule!({ family: 'ho', name: args.beta_schedule, T, beta_start: args.beta_start, beta_end: args.beta_end });
    const xT = tensorAt(root, 'x_T', file);
    const [B, ...img] = xT.shape;
    const per = xT.data.length;
    const runs = valueAt(root, 'runs', file) as Array<{ impl: string; model_var_type?: string; eta?: number }>;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r];
      const noiseRun = run.impl.includes('noise replayed from the pesser run') ? r - 1 : r;
      const traj = tensorAt(root, `runs.${r}.trajectory`, file);
      const pred = tensorAt(root, `runs.${r}.pred_xstart`, file);
      const noise = tensorAt(root, `runs.${noiseRun}.noise`, file);
      // Step i starts from x_T (i = 0) or trajectory[i − 1], at t = T − 1 − i: all T steps as one batch of T·B.
      const inputs = new Float64Array(T * per);
      inputs.set(xT.data, 0);
      inputs.set(traj.data.subarray(0, (T - 1) * per), per);
      const X = { shape: [T * B, ...img], data: inputs };
      const t = { shape: [T * B], data: Float64Array.from({ length: T * B }, (_, k) => T - 1 - Math.floor(k / B)) };
      const xs = nhwc(X);
      const ts = tf.tensor1d(Array.from(t.data), 'int32');
      const y = unetForward(config, params, xs as import('@tensorflow/tfjs').Tensor4D, ts);
      const output = await nchw(y);
      tf.dispose([xs, ts, y]);
      const varType = run.model_var_type === 'fixedsmall' ? 'FIXED_SMALL' : 'FIXED_LARGE';
      const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: varType as 'FIXED_SMALL' | 'FIXED_LARGE', clip_denoised: true };
      const N = { shape: [T * B, ...img], data: noise.data };
      const kase = `runs[${r}] ${run.impl}${run.eta !== undefined ? `, η = ${run.eta}` : `, ${run.model_var_type}`} (model: the UNet)`;
      const locate = (i: number) => `step ${Math.floor(i / per)} (t = ${T - 1 - Math.floor(i / per)}), example ${Math.floor((i % per) / (per / B))}`;
      try {
        const res = run.eta !== undefined ? await ops.ddim_step!({ ...a, eta: run.eta }, { kind: 'output', output }, X, t, N) : await ops.p_sample_step!(a, { kind: 'output', output }, X, t, N);
        const op = run.eta !== undefined ? 'ddim_step' : 'p_sample_step';
        emit({ file, case: kase, op, ...compareCheck(res.sample, { quantity: 'sample', expected: { shape: [T * B, ...img], data: traj.data }, tol: UNET_TOL, locate }) });
        emit({ file, case: kase, op, ...compareCheck(res.pred_xstart, { quantity: 'pred_xstart', expected: { shape: [T * B, ...img], data: pred.data }, tol: UNET_TOL, locate }) });
      } catch (e) {
        emit({ file, case: kase, quantity: 'sample, pred_xstart', verdict: 'error', maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: 1, tolerance: '', reason: '', detail: `${(e as Error).name}: ${(e as Error).message}` });
      }
    }
  }
}

async function builtinImpl(which: 'reference' | 'spec', backend: string | undefined): Promise<{ impl: DiffusionOps; backend?: string }> {
  if (which === 'spec') {
    const { createSpecOps } = await import('../conformance/impl/spec.ts');
    return { impl: createSpecOps() };
  }
  const report = await initBackend(backend ? { name: backend } : {});
  const { referenceOps } = await import('../conformance/impl/reference.ts');
  return { impl: referenceOps(), backend: report.chosen };
}

/**
 * Run the check and return the report (the table and the exit code are {@link checkCommand}'s business).
 *
 * @throws {@link UsageError} for a missing golden folder or an implementation that cannot be started
 * @throws FormatError for a malformed golden file (naming the file and the field)
 */
export async function runCheck(opts: CheckOptions = {}): Promise<Report> {
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const goldenRoot = resolve(opts.golden ?? DEFAULT_GOLDEN);
  const runGolden = opts.goldenCases ?? true;
  const runTheLaws = opts.laws ?? true;
  if (runGolden && (!existsSync(goldenRoot) || !statSync(goldenRoot).isDirectory())) {
    throw new UsageError(`--golden ${opts.golden ?? goldenRoot}: not a directory`);
  }
  const only = opts.only && opts.only.length > 0 ? (f: string) => opts.only!.some((s) => f.includes(s)) : undefined;

  // Read every golden file before starting anything: a malformed file stops the run here, naming file and field.
  const sets = runGolden
    ? goldenFolders(goldenRoot).map((dir) => {
        const rel = relative(goldenRoot, dir);
        return { dir, prefix: rel === '' ? '' : `${rel}/`, set: loadGolden(dir, { only }) };
      })
    : [];
  if (runGolden && sets.length === 0) throw new UsageError(`--golden ${opts.golden ?? goldenRoot}: no files there`);

  let impl: DiffusionOps;
  let backend: string | undefined;
  let stdio: StdioOps | undefined;
  if (opts.impl !== undefined) {
    try {
      stdio = await connectStdio(opts.impl, { timeoutS: opts.timeoutS });
    } catch (e) {
      if (e instanceof ImplError) throw new UsageError(e.message);
      throw e;
    }
    impl = stdio;
  } else {
    ({ impl, backend } = await builtinImpl(opts.builtin ?? 'reference', opts.backend));
  }

  const withUnet = opts.impl === undefined && (opts.builtin ?? 'reference') === 'reference';
  const rows: ReportRow[] = [];
  const add = (r: ReportRow): void => {
    rows.push(r);
    opts.onRow?.(r);
  };
  const skippedFiles: SkippedFile[] = [];
  const files: string[] = [];
  try {
    for (const { dir, prefix, set } of sets) {
      // Our reference also has the UNet: replay the UNet files the readers leave out.
      const unetFiles = withUnet ? await replayUnetFiles(dir, impl, (r) => add(goldenRow(r, prefix)), only, (f) => opts.onStage?.(`${prefix}${f}`)) : [];
      files.push(...unetFiles.filter((f) => f.endsWith('.json') || f.includes('_activations')).map((f) => `${prefix}${f}`));
      for (const s of set.skipped) {
        if (unetFiles.includes(s.file)) continue;
        const reason = s.reason === UNET_SKIP && !withUnet ? "a UNet file: the operation vocabulary (and so the protocol) has no network operation; only the built-in tfjs reference replays it" : s.reason;
        if (s.case === undefined && s.quantity === undefined) skippedFiles.push({ file: `${prefix}${s.file}`, reason });
        else for (const r of skippedRows([s])) add(goldenRow(r, prefix));
      }
      const byFile = new Map<string, typeof set.cases>();
      for (const c of set.cases) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);
      for (const [file, cases] of byFile) {
        files.push(`${prefix}${file}`);
        opts.onStage?.(`${prefix}${file} (${cases.length} cases)`);
        await replay(cases, impl, (r) => add(goldenRow(r, prefix)));
      }
    }
    if (runTheLaws) {
      opts.onStage?.(LAWS_FILE);
      await runLaws(impl, { arith: impl.precision ?? 'float32', seed: opts.seed, onRow: add });
    }
  } finally {
    await stdio?.close();
  }

  const t = totals(rows);
  const operations = stdio ? [...stdio.supported] : OP_NAMES.filter((op) => typeof impl[op] === 'function');
  return {
    tool: 'ddpm-spec check',
    implementation: {
      name: impl.name,
      ...(stdio ? { command: stdio.command } : {}),
      ...(stdio?.notes ? { notes: stdio.notes } : {}),
      operations,
    },
    ...(backend ? { backend } : {}),
    golden: runGolden ? { dir: opts.golden ?? relative(process.cwd(), goldenRoot) ?? goldenRoot, files, skipped: skippedFiles } : null,
    laws: runTheLaws,
    rows,
    totals: t,
    ok: passed(t),
    startedAt,
    seconds: (Date.now() - t0) / 1000,
  };
}

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
  return report.ok ? 0 : 1;
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
