/**
 * A figure for `docs/training.md`: points of a 2-D toy set next to samples of an MLP trained on it with the
 * built-in `toy` configuration (vega-lite, rendered headless to SVG), with the energy two-sample statistic.
 *
 * ```
 * node --import tsx reference/train/toyFigure.ts [--data 8gaussians] [--steps 1000] [--n 600] [--out docs/figures/toy-8gaussians.svg]
 * ```
 *
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { initBackend } from '../../src/backend.ts';
import { sampleToy, TOY_DATASETS, type ToyDataset } from '../../src/data/toy2d.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { PRESETS } from './config.ts';
import { ToyStream } from './data.ts';
import { sampleModel } from './evaluate.ts';
import { diffusionFor, train } from './loop.ts';
import { disposeOptimState, emaWeights } from './optim.ts';

/** Scatter plots of data and samples side by side, as SVG. */
export async function toyScatterSvg(name: string, data: ArrayLike<number>, samples: ArrayLike<number>, caption: string): Promise<string> {
  const rows = (xs: ArrayLike<number>, set: string): Array<{ x: number; y: number; set: string }> =>
    Array.from({ length: xs.length / 2 }, (_, i) => ({ x: xs[2 * i], y: xs[2 * i + 1], set }));
  const values = [...rows(data, `data (${name})`), ...rows(samples, 'model samples (EMA)')];
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${name}: data and samples`, subtitle: caption },
    data: { values },
    facet: { column: { field: 'set', type: 'nominal', title: null } },
    spec: {
      width: 260,
      height: 260,
      mark: { type: 'circle', size: 6, opacity: 0.6, aria: false },
      encoding: {
        x: { field: 'x', type: 'quantitative', scale: { domain: [-4, 4] } },
        y: { field: 'y', type: 'quantitative', scale: { domain: [-4, 4] } },
      },
    },
  } as unknown as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  // a tenth of a pixel is plenty: round the coordinates of paths and transforms (the file shrinks ~3×)
  return svg.replace(/ (d|transform)="([^"]*)"/g, (_m, attr: string, v: string) => ` ${attr}="${v.replace(/(\d+\.\d)\d+/g, '$1')}"`);
}

async function main(argv: string[]): Promise<void> {
  const get = (k: string, d: string): string => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
  const name = get('--data', '8gaussians') as ToyDataset;
  if (!(TOY_DATASETS as readonly string[]).includes(name)) throw new Error(`toyFigure: --data must be one of ${TOY_DATASETS.join(', ')}`);
  const steps = Number(get('--steps', '1000'));
  const n = Number(get('--n', '600'));
  const out = resolve(get('--out', join(import.meta.dirname, '../../docs/figures', `toy-${name}.svg`)));
  const report = await initBackend();
  const dir = mkdtempSync(join(tmpdir(), 'toy-figure-'));
  const config = PRESETS.toy;
  const diffusion = diffusionFor(config.diffusion);
  try {
    const run = await train({ config, dataName: name, openData: (r) => new ToyStream(name, r), outDir: dir, steps, keepModel: true });
    const ema = emaWeights(run.optim!);
    const s = await sampleModel(run.model!, diffusion, n, new Rng(5), { params: ema, clip: false });
    const samples = await s.data();
    tf.dispose([s, ...ema.values()]);
    run.model!.dispose();
    disposeOptimState(run.optim!);
    const data = sampleToy(name, new Rng(6), n);
    const caption = `MLP 3×128, ${steps} steps, batch ${config.batch_size}, T = ${config.diffusion.num_diffusion_timesteps}, ${n} points each, tfjs ${report.chosen}`;
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, await toyScatterSvg(name, data, samples, caption));
    process.stderr.write(`toyFigure: wrote ${out}\n`);
  } finally {
    diffusion.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main(process.argv.slice(2));
