/**
 * Weight import and export in the PyTorch port's `state_dict` form.
 *
 * A state dict here is a set of named float tensors in the **PyTorch layout** (`Conv2d.weight`
 * `[out,in,kh,kw]`, `Linear.weight` `[out,in]`, vectors `[C]`), with the names of pesser/pytorch_diffusion's
 * `Model` (see `params.ts`). Import converts to this implementation's layout (`[kh,kw,in,out]`, `[in,out]`);
 * export converts back, so that our safetensors files load with `Model.load_state_dict` unchanged.
 *
 * Import is all-or-nothing: every unknown, missing, mis-shaped or non-float tensor is collected and reported
 * together in one {@link WeightImportError} (name, expected and actual shape), and no tensor is created
 * unless all of them are right.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { FormatError, jsonErrorWithoutInput } from '../../src/formats/errors.ts';
import { firstNonFinite, readSafetensors, writeSafetensors, type StTensor, type StTensorIn } from '../../src/formats/safetensors.ts';
import { UNetConfig } from './config.ts';
import { paramSpecs, type ParamSpec, type UNetParams } from './params.ts';

/** One thing wrong with a state dict. */
export interface WeightProblem {
  name: string;
  kind: 'unknown' | 'missing' | 'shape' | 'dtype' | 'nonfinite';
  expected?: number[];
  actual?: number[];
  detail?: string;
}

function fmtShape(s: number[] | undefined): string {
  return s === undefined ? '?' : `[${s.join(',')}]`;
}

/** Describe one problem in a line: `down.0.block.0.conv1.weight: shape [32,1,3,3] expected, got [32,2,3,3]`. */
export function describeProblem(p: WeightProblem): string {
  switch (p.kind) {
    case 'unknown':
      return `${p.name}: not a parameter of this model (shape ${fmtShape(p.actual)})`;
    case 'missing':
      return `${p.name}: missing (expected shape ${fmtShape(p.expected)})`;
    case 'shape':
      return `${p.name}: expected shape ${fmtShape(p.expected)}, got ${fmtShape(p.actual)}`;
    case 'dtype':
      return `${p.name}: ${p.detail}`;
    case 'nonfinite':
      return `${p.name}: ${p.detail}`;
  }
}

/** A state dict that does not fit the model; lists every problem, one per line. */
export class WeightImportError extends FormatError {
  override name = 'WeightImportError';
  constructor(
    readonly source: string,
    readonly problems: WeightProblem[],
  ) {
    const counts = (['unknown', 'missing', 'shape', 'dtype', 'nonfinite'] as const)
      .map((k) => [k, problems.filter((p) => p.kind === k).length] as const)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k === 'shape' ? 'mis-shaped' : k === 'dtype' ? 'non-float' : k === 'nonfinite' ? 'non-finite' : k}`);
    super(source, '', `the state dict does not fit the model (${counts.join(', ')}); nothing was loaded:\n${problems.map((p) => `  ${describeProblem(p)}`).join('\n')}`);
  }
}

const FLOAT_DTYPES = new Set(['F32', 'F64', 'F16', 'BF16']);

/**
 * Copy one parameter between the two layouts: conv `[out, in, kh, kw]` (PyTorch) ↔ `[kh, kw, in, out]` (here),
 * dense `[out, in]` ↔ `[in, out]`, everything else unchanged. `toTf` picks the direction.
 */
function relayout(spec: ParamSpec, data: ArrayLike<number>, toTf: boolean): Float32Array {
  const n = data.length;
  const out = new Float32Array(n);
  // For every element: its index in PyTorch's layout and in ours.
  const copy = toTf ? (torchI: number, tfI: number) => (out[tfI] = data[torchI]) : (torchI: number, tfI: number) => (out[torchI] = data[tfI]);
  if (spec.kind === 'conv') {
    const [O, I, KH, KW] = spec.torchShape;
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++)
        for (let a = 0; a < KH; a++) for (let b = 0; b < KW; b++) copy(((o * I + i) * KH + a) * KW + b, ((a * KW + b) * I + i) * O + o);
  } else if (spec.kind === 'dense') {
    const [O, I] = spec.torchShape;
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) copy(o * I + i, i * O + o);
  } else {
    for (let i = 0; i < n; i++) out[i] = data[i];
  }
  return out;
}

/** PyTorch layout → this implementation's layout, for one parameter. */
export function toTfLayout(spec: ParamSpec, data: ArrayLike<number>): Float32Array {
  return relayout(spec, data, true);
}

/** This implementation's layout → PyTorch layout, for one parameter (inverse of {@link toTfLayout}). */
export function toTorchLayout(spec: ParamSpec, data: ArrayLike<number>): Float32Array {
  return relayout(spec, data, false);
}

/** Every problem with a state dict for this configuration (empty when it fits). */
export function checkStateDict(
  config: UNetConfig,
  tensors: ReadonlyMap<string, { dtype: string; shape: number[]; data?: StTensor['data'] | ArrayLike<number> }>,
): WeightProblem[] {
  const specs = paramSpecs(config);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const problems: WeightProblem[] = [];
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (t === undefined) {
      problems.push({ name: s.name, kind: 'missing', expected: s.torchShape });
      continue;
    }
    if (t.shape.length !== s.torchShape.length || t.shape.some((d, i) => d !== s.torchShape[i])) {
      problems.push({ name: s.name, kind: 'shape', expected: s.torchShape, actual: t.shape });
    }
    if (!FLOAT_DTYPES.has(t.dtype)) {
      problems.push({ name: s.name, kind: 'dtype', detail: `dtype ${t.dtype}, expected a floating type (F32, F64, F16, BF16)` });
    } else if (t.data !== undefined) {
      const data = t.data as ArrayLike<number>; // a float dtype: Float32Array or Float64Array
      const bad = firstNonFinite(data);
      if (bad >= 0) problems.push({ name: s.name, kind: 'nonfinite', detail: `element ${bad} (flat, PyTorch layout) is ${data[bad]}` });
    }
  }
  for (const [name, t] of tensors) if (!byName.has(name)) problems.push({ name, kind: 'unknown', actual: t.shape });
  return problems;
}

/**
 * Parameters from a PyTorch-layout state dict, all or nothing.
 *
 * @param source - where the tensors came from (a file name), for the error
 * @throws {@link WeightImportError} listing every unknown, missing, mis-shaped, non-float or non-finite tensor
 */
export function paramsFromStateDict(config: UNetConfig, tensors: ReadonlyMap<string, StTensor>, source: string): UNetParams {
  const problems = checkStateDict(config, tensors);
  if (problems.length > 0) throw new WeightImportError(source, problems);
  const converted = paramSpecs(config).map((s) => [s, toTfLayout(s, tensors.get(s.name)!.data as ArrayLike<number>)] as const);
  const params: UNetParams = {};
  try {
    for (const [s, data] of converted) params[s.name] = tf.tensor(data, s.shape, 'float32');
  } catch (e) {
    for (const t of Object.values(params)) t.dispose();
    throw e;
  }
  return params;
}

/**
 * The state dict (PyTorch names and layouts, float32, in `state_dict()` order) of a parameter set.
 * Reads the tensors with `await data()`.
 */
export async function stateDictFromParams(config: UNetConfig, params: UNetParams): Promise<Array<[string, StTensorIn & { data: Float32Array }]>> {
  const out: Array<[string, StTensorIn & { data: Float32Array }]> = [];
  for (const s of paramSpecs(config)) {
    const t = params[s.name];
    if (t === undefined) throw new Error(`stateDictFromParams: parameter ${s.name} is missing`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new Error(`stateDictFromParams: ${s.name} has shape [${t.shape.join(',')}], expected [${s.shape.join(',')}]`);
    }
    const data = (await t.data()) as Float32Array;
    out.push([s.name, { dtype: 'F32', shape: s.torchShape, data: toTorchLayout(s, data) }]);
  }
  return out;
}

/** The metadata key under which our safetensors files store the UNet configuration (JSON). */
export const CONFIG_METADATA_KEY = 'config';

/**
 * The configuration stored in a safetensors file's metadata: our `config` key, or the golden data's `cfg` key.
 * Returns null when there is none.
 */
export function configFromMetadata(metadata: Record<string, string>, file: string): UNetConfig | null {
  const raw = metadata[CONFIG_METADATA_KEY] ?? metadata.cfg;
  if (raw === undefined) return null;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new FormatError(file, `__metadata__.${CONFIG_METADATA_KEY}`, `not JSON (${jsonErrorWithoutInput(e)})`);
  }
  const r = UNetConfig.safeParse(json);
  if (!r.success) throw new FormatError(file, `__metadata__.config`, `not a valid UNet configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/**
 * Read a PyTorch state dict saved as safetensors (e.g. `safetensors.torch.save_file(model.state_dict(), path)`)
 * into parameters. The configuration is `config` if given, else the one in the file's metadata.
 */
export function readStateDict(path: string, config?: UNetConfig): { config: UNetConfig; params: UNetParams; metadata: Record<string, string> } {
  const st = readSafetensors(path);
  const cfg = config ?? configFromMetadata(st.metadata, path);
  if (cfg === null) throw new FormatError(path, `__metadata__.${CONFIG_METADATA_KEY}`, 'missing: no UNet configuration given and none in the file');
  return { config: cfg, params: paramsFromStateDict(cfg, st.tensors, path), metadata: st.metadata };
}

/**
 * Write parameters as a PyTorch state dict in safetensors (atomically), with the configuration in the metadata.
 */
export async function writeStateDict(path: string, config: UNetConfig, params: UNetParams, metadata: Record<string, string> = {}): Promise<void> {
  const entries = await stateDictFromParams(config, params);
  writeSafetensors(path, entries, { ...metadata, format: 'pytorch_diffusion.Model state_dict', [CONFIG_METADATA_KEY]: JSON.stringify(config) });
}
