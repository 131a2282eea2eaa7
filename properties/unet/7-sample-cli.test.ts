import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeSafetensors } from '../../src/formats/safetensors.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { checkSampleArgs } from '../../src/cli/sample.ts';
import { UsageError } from '../../src/cli/common.ts';
import { gridPng, readPng, toUint8 } from '../../src/image/grid.ts';
import { CheckpointConfig } from '../../reference/unet/checkpoint.ts';
import { SMALL_CONFIG, TINY_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { countParams, initValues, paramSpecs } from '../../reference/unet/params.ts';
import { toTorchLayout } from '../../reference/unet/weights.ts';

const run = promisify(execFile);

/** Run the CLI in a child process (not a terminal: plain progress lines). */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['bin/ddpm-spec.mjs', ...args], { timeout: 120_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (x) {
    const ex = x as { code: number; stdout: string; stderr: string };
    return { code: ex.code, out: ex.stdout, err: ex.stderr };
  }
}

/** A checkpoint written without tfjs: random (non-zero) weights in the PyTorch layout and a config.json. */
function writeCheckpoint(dir: string, unet: UNetConfig, T: number): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(4);
  const specs = paramSpecs(unet);
  writeSafetensors(
    join(dir, 'model.safetensors'),
    specs.map((s) => {
      const v = s.zeroInit ? Float32Array.from(rng.normals(s.shape.reduce((a, b) => a * b, 1)), (x) => 0.05 * x) : initValues(s, rng);
      return [s.name, { dtype: 'F32' as const, shape: s.torchShape, data: toTorchLayout(s, v) }];
    }),
  );
  const cfg: CheckpointConfig = {
    format: 'ddpm-spec-checkpoint',
    version: 1,
    unet,
    diffusion: { beta_schedule: 'linear', beta_start: 0.002, beta_end: 0.25, num_diffusion_timesteps: T, model_var_type: 'fixedlarge' },
    weights: 'model.safetensors',
    parameters: countParams(unet),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
}

let tmp = '';
let ck = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ddpm-sample-'));
  ck = join(tmp, 'ck');
  writeCheckpoint(ck, UNetConfig.parse(TINY_CONFIG), 20);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base = (over: Record<string, unknown> = {}) => ({ checkpoint: ck, n: '4', seed: '1', out: join(tmp, 'g.png'), ema: true, ...over });

describe('6.9 Sampling images from the command line', () => {
  it('writes pixels as uint8(clip((x+1)·127.5)) and lays images out row by row with a border  [unet.image.gridLayout]', () => {
    expect([-1, -0.999, 0, 0.999, 1, 2, -3, Number.NaN].map(toUint8)).toEqual([0, 0, 127, 254, 255, 255, 0, 0]);
    const imgs = Float32Array.from({ length: 3 * 2 * 2 }, (_, i) => (i < 4 ? -1 : i < 8 ? 0 : 1)); // three 2×2 grey images
    const png = readPng(gridPng(imgs, [3, 2, 2, 1], { cols: 2, pad: 1, background: 9 }));
    expect([png.width, png.height]).toEqual([2 * 2 + 3, 2 * 2 + 3]);
    const px = (x: number, y: number) => png.data[(y * png.width + x) * 4];
    expect([px(0, 0), px(1, 1), px(2, 2), px(4, 1), px(1, 4), px(4, 4)]).toEqual([9, 0, 0, 127, 255, 9]);
  });

  it('samples a grid on worker threads, with plain progress lines when stderr is not a terminal  [unet.cli.sampleWritesGrid]', async () => {
    const out = join(tmp, 'w2.png');
    const r = await cli(['sample', '--checkpoint', ck, '--steps', '5', '--n', '5', '--seed', '7', '--out', out, '--workers', '2', '--cols', '3']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('sample: step 5/5 (100%)');
    expect(r.err).toMatch(/wrote .*w2\.png \(5 images of 8×8\) .* 2 worker thread\(s\) on/);
    const png = readPng(readFileSync(out));
    expect([png.width, png.height]).toEqual([3 * 8 + 4 * 2, 2 * 8 + 3 * 2]);
  });

  it('gives the same images for the same seed whatever the number of workers, and writes x̂₀ frames  [unet.cli.seedDeterminesImages]', async () => {
    const a = join(tmp, 'a.png');
    const b = join(tmp, 'b.png');
    const frames = join(tmp, 'frames');
    const common = ['sample', '--checkpoint', ck, '--ddim', '4', '--eta', '0.5', '--n', '3', '--seed', '11'];
    const [ra, rb] = [await cli([...common, '--out', a, '--workers', '0', '--frames', frames, '--frame-every', '2']), await cli([...common, '--out', b, '--workers', '2'])];
    expect(ra.code, ra.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readdirSync(frames).sort()).toEqual(['x0-step-00002.png', 'x0-step-00004.png']);
  });

  it('reports bad input by the option or the file, before sampling  [unet.cli.badInputNamed]', () => {
    const expectErr = (over: Record<string, unknown>, kind: typeof UsageError | typeof FormatError, msg: RegExp | string) => {
      let err: unknown;
      try {
        checkSampleArgs(base(over) as Parameters<typeof checkSampleArgs>[0]);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(over)).toBeInstanceOf(kind);
      expect((err as Error).message).toMatch(msg);
    };
    expectErr({ checkpoint: undefined }, UsageError, '--checkpoint DIR is required');
    expectErr({ checkpoint: join(tmp, 'missing') }, FormatError, `${join(tmp, 'missing')}: checkpoint directory does not exist`);
    expectErr({ out: join(tmp, 'no', 'such', 'dir', 'g.png') }, UsageError, `--out: directory ${join(tmp, 'no', 'such', 'dir')} does not exist`);
    expectErr({ out: tmp }, UsageError, /--out: .* is a directory/);
    expectErr({ steps: '21' }, UsageError, '--steps must be an integer in [1, 20], got "21"');
    expectErr({ steps: '3', ddim: '3' }, UsageError, '--steps and --ddim cannot be used together');
    expectErr({ eta: '1' }, UsageError, '--eta only applies to DDIM sampling');
    expectErr({ ddim: '4', eta: 'x' }, UsageError, '--eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM-like variance), got "x"');
    expectErr({ ddim: '4', eta: '1.5' }, UsageError, '--eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM-like variance), got "1.5"');
    expectErr({ n: '0' }, UsageError, '--n must be an integer in [1, 4096], got "0"');
    expectErr({ frameEvery: '2' }, UsageError, '--frame-every needs --frames DIR');
    // Weights of another model under this config.json: every mismatch named, with both shapes.
    const wrong = join(tmp, 'wrong');
    writeCheckpoint(wrong, UNetConfig.parse(TINY_CONFIG), 20);
    writeCheckpoint(join(tmp, 'small'), UNetConfig.parse(SMALL_CONFIG), 20);
    writeFileSync(join(wrong, 'model.safetensors'), readFileSync(join(tmp, 'small', 'model.safetensors')));
    expectErr({ checkpoint: wrong }, UsageError, /wrong\/model\.safetensors: the weights do not fit the configuration in config\.json:\n/);
    const msg = (() => {
      try {
        checkSampleArgs(base({ checkpoint: wrong }) as Parameters<typeof checkSampleArgs>[0]);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(msg).toContain('down.1.block.0.conv1.weight: expected shape [64,32,3,3], got [32,32,3,3]');
    expect(msg).toContain('down.1.block.0.nin_shortcut.weight: missing (expected shape [64,32,1,1])');
    expect(msg).toMatch(/down\.2\.block\.0\.conv1\.weight: not a parameter of this model/);
  });
});
