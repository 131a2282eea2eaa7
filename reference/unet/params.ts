/**
 * The parameters of the Ho et al. UNet: their names, shapes, layouts and initialisation.
 *
 * Names are those of the PyTorch port's `state_dict()` (pesser/pytorch_diffusion `Model`), in the same
 * order: `temb.dense.{0,1}`, `conv_in`, `down.{level}.block.{i}.{norm1,conv1,temb_proj,norm2,conv2,nin_shortcut}`,
 * `down.{level}.attn.{i}.{norm,q,k,v,proj_out}`, `down.{level}.downsample.conv`, `mid.{block_1,attn_1,block_2}`,
 * `up.{level}.block.{i}`, `up.{level}.attn.{i}`, `up.{level}.upsample.conv`, `norm_out`, `conv_out`, each with
 * `.weight` and `.bias`.
 *
 * Layouts. PyTorch stores a convolution kernel as `[out, in, kh, kw]` and a linear layer as `[out, in]`; this
 * implementation (NHWC) stores a kernel as `[kh, kw, in, out]` (1×1 convolutions too: `[1, 1, in, out]`) and
 * a dense kernel as `[in, out]`. Norm scales/shifts and biases are `[C]` in both.
 *
 * Initialisation (`init`): PyTorch's defaults for `Conv2d` and `Linear` — weight and bias uniform on
 * (−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5), fan_in = in·kh·kw — GroupNorm scale 1 and shift 0,
 * and, as in Ho et al.'s original code (`init_scale=0.`), zero weights and biases for the last convolution
 * of every residual block (`conv2`), of every attention block (`proj_out`) and of the model (`conv_out`), so
 * that each residual branch starts as the identity and the initial model outputs zero.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../src/numeric/rng.ts';
import type { UNetConfig } from './config.ts';

/** What a parameter is, which decides its layout conversion and its initialisation. */
export type ParamKind = 'conv' | 'dense' | 'bias' | 'norm_scale' | 'norm_shift';

/** One parameter of the model. */
export interface ParamSpec {
  /** The PyTorch state_dict name, e.g. `down.0.block.0.conv1.weight`. */
  name: string;
  kind: ParamKind;
  /** Shape in the PyTorch layout (`[out,in,kh,kw]`, `[out,in]`, `[C]`). */
  torchShape: number[];
  /** Shape in this implementation's layout (`[kh,kw,in,out]`, `[in,out]`, `[C]`). */
  shape: number[];
  /** fan_in of the layer the parameter belongs to (in·kh·kw), for PyTorch's default init ranges. */
  fanIn: number;
  /** Zero-initialised (the last convolution of a residual branch or of the model, as in Ho et al.'s code). */
  zeroInit: boolean;
}

/** The model's parameters by state_dict name, in this implementation's layout (float32). */
export type UNetParams = Record<string, tf.Tensor>;

/** The structure the forward pass walks: which blocks exist, with their channel counts. */
export interface ResBlockPlan {
  prefix: string;
  inCh: number;
  outCh: number;
}
export interface LevelPlan {
  level: number;
  /** Height = width of the feature maps at this level. */
  resolution: number;
  blocks: ResBlockPlan[];
  /** Attention block prefixes after each residual block (empty when this level has none). */
  attn: string[];
  /** `down.{i}.downsample` / `up.{i}.upsample`, or null at the last / first level. */
  resample: string | null;
  channels: number;
}
export interface UNetPlan {
  temb: number;
  down: LevelPlan[];
  mid: { block1: ResBlockPlan; attn: string; block2: ResBlockPlan };
  /** In execution order: level L−1 first. */
  up: LevelPlan[];
  outCh: number;
  finalCh: number;
}

/** The model's structure from its configuration (same loops as the reference constructor). */
export function unetPlan(c: UNetConfig): UNetPlan {
  const L = c.ch_mult.length;
  const inMult = [1, ...c.ch_mult];
  let res = c.resolution;
  let blockIn = c.ch;
  const down: LevelPlan[] = [];
  for (let i = 0; i < L; i++) {
    const blockOut = c.ch * c.ch_mult[i];
    const blocks: ResBlockPlan[] = [];
    const attn: string[] = [];
    for (let b = 0; b < c.num_res_blocks; b++) {
      blocks.push({ prefix: `down.${i}.block.${b}`, inCh: blockIn, outCh: blockOut });
      blockIn = blockOut;
      if (c.attn_resolutions.includes(res)) attn.push(`down.${i}.attn.${b}`);
    }
    const resample = i !== L - 1 ? `down.${i}.downsample` : null;
    down.push({ level: i, resolution: res, blocks, attn, resample, channels: blockIn });
    if (resample) res = res / 2;
  }
  const mid = {
    block1: { prefix: 'mid.block_1', inCh: blockIn, outCh: blockIn },
    attn: 'mid.attn_1',
    block2: { prefix: 'mid.block_2', inCh: blockIn, outCh: blockIn },
  };
  const up: LevelPlan[] = [];
  for (let i = L - 1; i >= 0; i--) {
    const blockOut = c.ch * c.ch_mult[i];
    const blocks: ResBlockPlan[] = [];
    const attn: string[] = [];
    for (let b = 0; b <= c.num_res_blocks; b++) {
      const skip = b === c.num_res_blocks ? c.ch * inMult[i] : c.ch * c.ch_mult[i];
      blocks.push({ prefix: `up.${i}.block.${b}`, inCh: blockIn + skip, outCh: blockOut });
      blockIn = blockOut;
      if (c.attn_resolutions.includes(res)) attn.push(`up.${i}.attn.${b}`);
    }
    const resample = i !== 0 ? `up.${i}.upsample` : null;
    up.push({ level: i, resolution: res, blocks, attn, resample, channels: blockIn });
    if (resample) res = res * 2;
  }
  return { temb: 4 * c.ch, down, mid, up, outCh: c.out_ch, finalCh: blockIn };
}

function conv(out: ParamSpec[], prefix: string, inCh: number, outCh: number, k: number, zeroInit = false): void {
  const fanIn = inCh * k * k;
  out.push({ name: `${prefix}.weight`, kind: 'conv', torchShape: [outCh, inCh, k, k], shape: [k, k, inCh, outCh], fanIn, zeroInit });
  out.push({ name: `${prefix}.bias`, kind: 'bias', torchShape: [outCh], shape: [outCh], fanIn, zeroInit });
}
function dense(out: ParamSpec[], prefix: string, inCh: number, outCh: number): void {
  out.push({ name: `${prefix}.weight`, kind: 'dense', torchShape: [outCh, inCh], shape: [inCh, outCh], fanIn: inCh, zeroInit: false });
  out.push({ name: `${prefix}.bias`, kind: 'bias', torchShape: [outCh], shape: [outCh], fanIn: inCh, zeroInit: false });
}
function norm(out: ParamSpec[], prefix: string, ch: number): void {
  out.push({ name: `${prefix}.weight`, kind: 'norm_scale', torchShape: [ch], shape: [ch], fanIn: 0, zeroInit: false });
  out.push({ name: `${prefix}.bias`, kind: 'norm_shift', torchShape: [ch], shape: [ch], fanIn: 0, zeroInit: false });
}
function resBlock(out: ParamSpec[], b: ResBlockPlan, temb: number): void {
  norm(out, `${b.prefix}.norm1`, b.inCh);
  conv(out, `${b.prefix}.conv1`, b.inCh, b.outCh, 3);
  dense(out, `${b.prefix}.temb_proj`, temb, b.outCh);
  norm(out, `${b.prefix}.norm2`, b.outCh);
  conv(out, `${b.prefix}.conv2`, b.outCh, b.outCh, 3, true);
  if (b.inCh !== b.outCh) conv(out, `${b.prefix}.nin_shortcut`, b.inCh, b.outCh, 1);
}
function attnBlock(out: ParamSpec[], prefix: string, ch: number): void {
  norm(out, `${prefix}.norm`, ch);
  conv(out, `${prefix}.q`, ch, ch, 1);
  conv(out, `${prefix}.k`, ch, ch, 1);
  conv(out, `${prefix}.v`, ch, ch, 1);
  conv(out, `${prefix}.proj_out`, ch, ch, 1, true);
}

/**
 * Every parameter of the model, in the PyTorch port's `state_dict()` order (module registration order:
 * within a level, all residual blocks, then all attention blocks, then the resampling convolution).
 */
export function paramSpecs(c: UNetConfig): ParamSpec[] {
  const p = unetPlan(c);
  const out: ParamSpec[] = [];
  dense(out, 'temb.dense.0', c.ch, p.temb);
  dense(out, 'temb.dense.1', p.temb, p.temb);
  conv(out, 'conv_in', c.in_channels, c.ch, 3);
  for (const lv of p.down) {
    for (const b of lv.blocks) resBlock(out, b, p.temb);
    for (const a of lv.attn) attnBlock(out, a, lv.channels);
    if (lv.resample && c.resamp_with_conv) conv(out, `${lv.resample}.conv`, lv.channels, lv.channels, 3);
  }
  resBlock(out, p.mid.block1, p.temb);
  attnBlock(out, p.mid.attn, p.mid.block1.outCh);
  resBlock(out, p.mid.block2, p.temb);
  // The port builds `up` from the last level down but inserts each at index 0: state_dict order is level 0 first.
  for (const lv of [...p.up].reverse()) {
    for (const b of lv.blocks) resBlock(out, b, p.temb);
    for (const a of lv.attn) attnBlock(out, a, lv.channels);
    if (lv.resample && c.resamp_with_conv) conv(out, `${lv.resample}.conv`, lv.channels, lv.channels, 3);
  }
  norm(out, 'norm_out', p.finalCh);
  conv(out, 'conv_out', p.finalCh, c.out_ch, 3, true);
  return out;
}

/** Total number of scalar parameters (35,746,307 for {@link CIFAR10_CONFIG}). */
export function countParams(c: UNetConfig): number {
  return paramSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Values of one freshly initialised parameter (float32, this implementation's layout). */
export function initValues(s: ParamSpec, rng: Rng): Float32Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (s.zeroInit || s.kind === 'norm_shift') return out;
  if (s.kind === 'norm_scale') return out.fill(1);
  const bound = 1 / Math.sqrt(s.fanIn);
  for (let i = 0; i < n; i++) out[i] = (2 * rng.uniform() - 1) * bound;
  return out;
}

/**
 * Fresh parameters with the reference initialisation (see the module comment), drawn from `rng` in
 * state_dict order. The caller owns the returned tensors (dispose them, or {@link disposeParams}).
 */
export function initParams(c: UNetConfig, rng: Rng): UNetParams {
  const params: UNetParams = {};
  for (const s of paramSpecs(c)) params[s.name] = tf.tensor(initValues(s, rng), s.shape, 'float32');
  return params;
}

/** Dispose every tensor of a parameter set. */
export function disposeParams(p: UNetParams): void {
  for (const t of Object.values(p)) t.dispose();
}
