/**
 * The TypeScript half of the PyTorch round trip (`src/python/pesser_roundtrip.py` runs it): export a UNet
 * checkpoint with random, non-zero weights and record its outputs on fixed inputs.
 *
 * Usage: `node --import tsx src/python/roundtrip_export.ts DIR [small|cifar10]` (the model: every feature at 16×16,
 * or Ho et al.'s CIFAR-10 configuration) writes `DIR/config.json`, `DIR/model.safetensors`
 * (our export: the PyTorch port's state-dict names and layouts) and `DIR/io.safetensors` (`x` NCHW, `t`, and our
 * output `out` NCHW), then prints one JSON line describing what it wrote.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { initBackend } from '../backend.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { Rng } from '../numeric/rng.ts';
import { HO_CIFAR10_DIFFUSION, saveCheckpoint } from '../../reference/unet/checkpoint.ts';
import { CIFAR10_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { unetForward } from '../../reference/unet/model.ts';
import { countParams, paramSpecs, type UNetParams } from '../../reference/unet/params.ts';

/** Every feature of the model: two levels, a channel change (nin_shortcut), attention at 8×8, down/upsampling, RGB. */
export const ROUNDTRIP_CONFIG = UNetConfig.parse({
  ch: 32,
  out_ch: 3,
  ch_mult: [1, 2],
  num_res_blocks: 2,
  attn_resolutions: [8],
  dropout: 0.1,
  resamp_with_conv: true,
  in_channels: 3,
  resolution: 16,
});

async function main(dir: string, which: string): Promise<void> {
  const report = await initBackend();
  const cfg = which === 'cifar10' ? UNetConfig.parse(CIFAR10_CONFIG) : ROUNDTRIP_CONFIG;
  const rng = new Rng(20261125);
  // Random weights everywhere (also where the reference initialises to zero), so every tensor matters.
  const params: UNetParams = {};
  for (const s of paramSpecs(cfg)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const scale = s.kind === 'norm_scale' ? 0.3 : 1 / Math.sqrt(Math.max(1, s.fanIn));
    params[s.name] = tf.tensor(Float32Array.from(rng.normals(n), (v) => (s.kind === 'norm_scale' ? 1 + scale * v : scale * v)), s.shape);
  }
  await saveCheckpoint(dir, { unet: cfg, diffusion: HO_CIFAR10_DIFFUSION, params });
  const B = 4;
  const { resolution: r, in_channels: c } = cfg;
  const x = Float32Array.from(rng.normals(B * c * r * r)); // NCHW
  const t = Float32Array.from([0, 1, 500, 999]);
  const out = tf.tidy(() => {
    const xt = tf.tensor4d(x, [B, c, r, r]).transpose([0, 2, 3, 1]) as tf.Tensor4D;
    return unetForward(cfg, params, xt, tf.tensor1d(t)).transpose([0, 3, 1, 2]);
  });
  const y = (await out.data()) as Float32Array;
  writeSafetensors(
    join(dir, 'io.safetensors'),
    [
      ['x', { dtype: 'F32', shape: [B, c, r, r], data: x }],
      ['t', { dtype: 'F32', shape: [B], data: t }],
      ['out', { dtype: 'F32', shape: out.shape, data: y }],
    ],
    { backend: report.chosen, layout: 'NCHW' },
  );
  process.stdout.write(`${JSON.stringify({ dir, backend: report.chosen, parameters: countParams(cfg), config: cfg })}\n`);
}

const [dir, which = 'small'] = process.argv.slice(2);
if (!dir || !['small', 'cifar10'].includes(which)) {
  process.stderr.write('usage: node --import tsx src/python/roundtrip_export.ts DIR [small|cifar10]\n');
  process.exit(2);
}
await main(dir, which);
