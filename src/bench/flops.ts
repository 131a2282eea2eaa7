/**
 * Floating-point operation counts of the UNet's forward pass, per layer kind (multiply–adds count as two).
 *
 * Counted: convolutions (2·H_out·W_out·C_in·C_out·k² per image), dense layers (2·in·out), and the two
 * products of each attention block (2·P²·C each, P = H·W). Not counted: normalisation, activations, softmax,
 * additions (a few operations per element, < 1 % of the total for these models).
 *
 * @module
 */
import type { UNetConfig } from '../../reference/unet/config.ts';
import type { LayerKind } from '../../reference/unet/model.ts';
import { unetPlan } from '../../reference/unet/params.ts';

/** FLOPs of one image's forward pass, by layer kind. */
export function forwardFlops(c: UNetConfig): Map<LayerKind, number> {
  const p = unetPlan(c);
  const out = new Map<LayerKind, number>();
  const add = (k: LayerKind, f: number) => out.set(k, (out.get(k) ?? 0) + f);
  const conv = (res: number, cin: number, cout: number, k: number, kind: LayerKind = k === 1 ? 'conv 1×1' : 'conv 3×3') => add(kind, 2 * res * res * cin * cout * k * k);
  const res = (r: number, b: { inCh: number; outCh: number }) => {
    conv(r, b.inCh, b.outCh, 3);
    conv(r, b.outCh, b.outCh, 3);
    add('timestep embedding + dense', 2 * p.temb * b.outCh);
    if (b.inCh !== b.outCh) conv(r, b.inCh, b.outCh, 1);
  };
  const attn = (r: number, ch: number) => {
    for (let i = 0; i < 4; i++) conv(r, ch, ch, 1);
    add('attention core', 2 * 2 * (r * r) ** 2 * ch);
  };
  add('timestep embedding + dense', 2 * c.ch * p.temb + 2 * p.temb * p.temb);
  conv(c.resolution, c.in_channels, c.ch, 3);
  for (const lv of p.down) {
    lv.blocks.forEach((b, i) => {
      res(lv.resolution, b);
      if (lv.attn[i]) attn(lv.resolution, b.outCh);
    });
    if (lv.resample && c.resamp_with_conv) conv(lv.resolution / 2, lv.channels, lv.channels, 3, 'downsample');
  }
  const rm = p.down[p.down.length - 1].resolution;
  res(rm, p.mid.block1);
  attn(rm, p.mid.block1.outCh);
  res(rm, p.mid.block2);
  for (const lv of p.up) {
    lv.blocks.forEach((b, i) => {
      res(lv.resolution, b);
      if (lv.attn[i]) attn(lv.resolution, b.outCh);
    });
    if (lv.resample && c.resamp_with_conv) conv(lv.resolution * 2, lv.channels, lv.channels, 3);
  }
  conv(c.resolution, p.finalCh, c.out_ch, 3);
  return out;
}

/** Total FLOPs of one image's forward pass. */
export function totalForwardFlops(c: UNetConfig): number {
  let s = 0;
  for (const v of forwardFlops(c).values()) s += v;
  return s;
}
