/**
 * The forward pass of Ho et al.'s UNet (2020), NHWC, float32, on any tfjs backend.
 *
 * Structure (same order as `diffusion_tf/models/unet.py:model` and its PyTorch port):
 *
 * 1. timestep embedding: sinusoidal(t, ch) → dense(ch→4ch) → swish → dense(4ch→4ch) = temb;
 * 2. `conv_in` (3×3); down path: at each level `num_res_blocks` residual blocks (each followed by
 *    self-attention when the level's resolution is listed), then a strided downsampling except at the
 *    last level; every intermediate result is kept as a skip connection;
 * 3. middle: residual block, attention, residual block;
 * 4. up path: at each level, from the last, `num_res_blocks + 1` residual blocks on the concatenation
 *    (channels last) of the current features and the most recent skip, attention where listed, then
 *    nearest ×2 upsampling (+ 3×3 convolution) except at level 0;
 * 5. out = conv_out(swish(norm_out(h))).
 *
 * Residual block: h = conv1(swish(norm1(x))) + temb_proj(swish(temb)) (broadcast over positions);
 * h = conv2(dropout(swish(norm2(h)))); out = shortcut(x) + h, the shortcut a 1×1 convolution
 * (`nin_shortcut`) when the channel count changes. Attention block: out = x + proj_out(attention(q, k, v))
 * with q, k, v 1×1 convolutions of norm(x).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { swish } from '../nn/activation.ts';
import { dotProductAttention } from '../nn/attention.ts';
import { conv2dSame, downsample, upsampleNearest2x } from '../nn/conv.ts';
import { dense } from '../nn/dense.ts';
import { groupNorm, groupNormSwish } from '../nn/norm.ts';
import { timestepEmbedding } from '../nn/timestepEmbedding.ts';
import { GROUPS, NORM_EPS, type UNetConfig } from './config.ts';
import { unetPlan, type ResBlockPlan, type UNetParams } from './params.ts';

/** Options of {@link unetForward}. */
export interface ForwardOptions {
  /**
   * Called with every recorded intermediate result, named as the PyTorch port's forward hooks
   * (`down.0.block.0.norm1`, `mid.attn_1.q`, `temb.dense.1`, …; a module's own output, so norms before the
   * swish and `temb_proj` as `[N, C]`). Image tensors are NHWC. The callback owns the tensor (dispose it).
   */
  capture?: (name: string, t: tf.Tensor) => void;
  /**
   * Training mode: apply dropout with the configuration's rate before each `conv2`. Block k (in execution
   * order) draws its mask with seed `dropoutSeed + k`. Without it (the default) the model is in eval mode.
   */
  dropoutSeed?: number;
  /**
   * Profiling: called with the wall-clock milliseconds of each layer as it runs, by layer kind. Meaningful on
   * synchronous backends (wasm, cpu), where an op has finished when it returns; on webgpu it measures dispatch.
   */
  timer?: (kind: LayerKind, ms: number) => void;
}

/** The layer kinds {@link ForwardOptions.timer} reports. */
export const LAYER_KINDS = [
  'conv 3×3',
  'conv 1×1',
  'group norm',
  'swish',
  'attention core',
  'downsample',
  'upsample',
  'concat',
  'residual add',
  'timestep embedding + dense',
] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

class Ctx {
  private block = 0;
  constructor(
    readonly params: UNetParams,
    readonly config: UNetConfig,
    readonly opts: ForwardOptions,
  ) {}
  get<T extends tf.Tensor>(name: string): T {
    const p = this.params[name];
    if (p === undefined) throw new Error(`unetForward: parameter ${name} is missing from params`);
    return p as T;
  }
  rec<T extends tf.Tensor>(name: string, t: T): T {
    if (this.opts.capture) this.opts.capture(name, tf.keep(t.clone()));
    return t;
  }
  time<T>(kind: LayerKind, f: () => T): T {
    const timer = this.opts.timer;
    if (timer === undefined) return f();
    const t0 = performance.now();
    const r = f();
    timer(kind, performance.now() - t0);
    return r;
  }
  nextDropoutSeed(): number | null {
    return this.opts.dropoutSeed === undefined ? null : this.opts.dropoutSeed + this.block++;
  }
}

function norm(c: Ctx, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return c.rec(name, c.time('group norm', () => groupNorm(x, c.get(`${name}.weight`), c.get(`${name}.bias`), GROUPS, NORM_EPS)));
}
/**
 * swish(norm(x)), or norm(x) alone with `withSwish` false. Unless intermediate results are captured (the golden
 * replay records the norm's own output, before the swish), this is one fused kernel where the backend has it
 * (`groupNormSwish`); profiled, its time counts as group norm.
 */
function normAct(c: Ctx, name: string, x: tf.Tensor4D, withSwish = true): tf.Tensor4D {
  if (c.opts.capture) return withSwish ? act(c, norm(c, name, x)) : norm(c, name, x);
  return c.time('group norm', () => groupNormSwish(x, c.get(`${name}.weight`), c.get(`${name}.bias`), GROUPS, NORM_EPS, withSwish));
}
function conv(c: Ctx, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const w = c.get<tf.Tensor4D>(`${name}.weight`);
  return c.rec(name, c.time(w.shape[0] === 1 ? 'conv 1×1' : 'conv 3×3', () => conv2dSame(x, w, c.get(`${name}.bias`))));
}
function act<T extends tf.Tensor>(c: Ctx, x: T): T {
  return c.time('swish', () => swish(x));
}

function resBlock(c: Ctx, b: ResBlockPlan, x: tf.Tensor4D, tembAct: tf.Tensor2D): tf.Tensor4D {
  const p = b.prefix;
  let h = conv(c, `${p}.conv1`, normAct(c, `${p}.norm1`, x));
  const tp = c.rec(`${p}.temb_proj`, c.time('timestep embedding + dense', () => dense(tembAct, c.get(`${p}.temb_proj.weight`), c.get(`${p}.temb_proj.bias`))));
  h = c.time('residual add', () => h.add(tp.reshape([tp.shape[0], 1, 1, tp.shape[1]])));
  let a = normAct(c, `${p}.norm2`, h);
  const seed = c.nextDropoutSeed();
  if (seed !== null && c.config.dropout > 0) a = tf.dropout(a, c.config.dropout, undefined, seed) as tf.Tensor4D;
  h = conv(c, `${p}.conv2`, a);
  const shortcut = b.inCh !== b.outCh ? conv(c, `${p}.nin_shortcut`, x) : x;
  return c.rec(p, c.time('residual add', () => shortcut.add(h)));
}

function attnBlock(c: Ctx, p: string, x: tf.Tensor4D): tf.Tensor4D {
  const [n, hh, ww, ch] = x.shape;
  const hn = normAct(c, `${p}.norm`, x, false);
  const q = conv(c, `${p}.q`, hn);
  const k = conv(c, `${p}.k`, hn);
  const v = conv(c, `${p}.v`, hn);
  const flat = (t: tf.Tensor4D): tf.Tensor3D => t.reshape([n, hh * ww, ch]);
  const att = c.time('attention core', () => dotProductAttention(flat(q), flat(k), flat(v)).reshape([n, hh, ww, ch]) as tf.Tensor4D);
  const o = conv(c, `${p}.proj_out`, att);
  return c.rec(p, c.time('residual add', () => x.add(o)));
}

/** Check the input shapes against the configuration; the error names the argument and what was expected. */
function checkInputs(config: UNetConfig, x: tf.Tensor, t: tf.Tensor): void {
  const r = config.resolution;
  if (x.rank !== 4 || x.shape[1] !== r || x.shape[2] !== r || x.shape[3] !== config.in_channels) {
    throw new Error(`unetForward: x must be [N, ${r}, ${r}, ${config.in_channels}] (NHWC) for this configuration, got [${x.shape.join(',')}]`);
  }
  if (t.rank !== 1 || t.shape[0] !== x.shape[0]) {
    throw new Error(`unetForward: t must be a vector of ${x.shape[0]} timesteps (one per example), got shape [${t.shape.join(',')}]`);
  }
}

/**
 * The UNet's output for images `x` at timesteps `t`.
 *
 * @param config - the model's configuration (validated {@link UNetConfig})
 * @param params - parameters by state_dict name, this implementation's layout (see `params.ts`)
 * @param x - `[N, resolution, resolution, in_channels]` float32, NHWC
 * @param t - `[N]` timesteps (int32 or float32; the 0-based t of the diffusion, not rescaled)
 * @returns `[N, resolution, resolution, out_ch]` (ε prediction for the DDPM models)
 */
export function unetForward(config: UNetConfig, params: UNetParams, x: tf.Tensor4D, t: tf.Tensor1D, opts: ForwardOptions = {}): tf.Tensor4D {
  checkInputs(config, x, t);
  const plan = unetPlan(config);
  const c = new Ctx(params, config, opts);
  return tf.tidy(() => {
    const te = 'timestep embedding + dense';
    const emb = c.rec('timestep_embedding', c.time(te, () => timestepEmbedding(t, config.ch)));
    let temb = c.rec('temb.dense.0', c.time(te, () => dense(emb, c.get('temb.dense.0.weight'), c.get('temb.dense.0.bias'))));
    temb = c.rec('temb.dense.1', c.time(te, () => dense(swish(temb), c.get('temb.dense.1.weight'), c.get('temb.dense.1.bias'))));
    // Every residual block applies the swish to temb before its projection; compute it once.
    const tembAct = c.time(te, () => swish(temb));

    const hs: tf.Tensor4D[] = [conv(c, 'conv_in', x.toFloat())];
    for (const lv of plan.down) {
      for (let b = 0; b < lv.blocks.length; b++) {
        let h = resBlock(c, lv.blocks[b], hs[hs.length - 1], tembAct);
        if (lv.attn.length > 0) h = attnBlock(c, lv.attn[b], h);
        hs.push(h);
      }
      if (lv.resample) {
        const w = config.resamp_with_conv ? c.get<tf.Tensor4D>(`${lv.resample}.conv.weight`) : null;
        const bias = config.resamp_with_conv ? c.get<tf.Tensor1D>(`${lv.resample}.conv.bias`) : null;
        const d = c.time('downsample', () => downsample(hs[hs.length - 1], w, bias));
        if (config.resamp_with_conv) c.rec(`${lv.resample}.conv`, d);
        hs.push(c.rec(lv.resample, d));
      }
    }

    let h = hs[hs.length - 1];
    h = resBlock(c, plan.mid.block1, h, tembAct);
    h = attnBlock(c, plan.mid.attn, h);
    h = resBlock(c, plan.mid.block2, h, tembAct);

    for (const lv of plan.up) {
      for (let b = 0; b < lv.blocks.length; b++) {
        const skip = hs.pop()!;
        const cat = c.time('concat', () => tf.concat([h, skip], 3));
        h = resBlock(c, lv.blocks[b], cat, tembAct);
        if (lv.attn.length > 0) h = attnBlock(c, lv.attn[b], h);
      }
      if (lv.resample) {
        let u = c.time('upsample', () => upsampleNearest2x(h));
        if (config.resamp_with_conv) u = conv(c, `${lv.resample}.conv`, u);
        h = c.rec(lv.resample, u);
      }
    }

    h = normAct(c, 'norm_out', h);
    return conv(c, 'conv_out', h);
  });
}
