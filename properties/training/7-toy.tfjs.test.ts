import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESETS } from '../../reference/train/config.ts';
import { ToyStream } from '../../reference/train/data.ts';
import { sampleModel } from '../../reference/train/evaluate.ts';
import { diffusionFor, train } from '../../reference/train/loop.ts';
import { disposeOptimState } from '../../reference/train/optim.ts';
import { sampleToy } from '../../src/data/toy2d.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { energyTest } from './support/energy.ts';

/**
 * Runs on the default backend only: 1000 training steps and 100-step sampling take ~15 s on wasm but minutes
 * on the software webgpu and the cpu backends, where the gradients themselves are checked by 7.1 and the loop
 * by 7.5.
 */
const onDefaultBackend = process.env.DDPM_TEST_SET !== 'backend';

/** α of the two-sample test: its false-failure rate if the model's distribution were exactly the data's. */
const ALPHA = 0.01;
const N = 500;

describe('7.7 A toy run learns its data distribution', () => {
  it.runIf(onDefaultBackend)(
    'an MLP trained 1000 steps on 8 Gaussians samples points an energy two-sample test (n = 500, α = 0.01) cannot tell from the data, while the untrained model\'s are rejected  [training.toy.samplesMatchData]',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ddpm-toy-'));
      const config = PRESETS.toy; // MLP 3×128, T = 100, lr 2e-3, EMA 0.995, batch 256
      const diffusion = diffusionFor(config.diffusion);
      try {
        const untrained = await train({ config, dataName: '8gaussians', openData: (r) => new ToyStream('8gaussians', r), outDir: join(dir, 'u'), steps: 0, keepModel: true });
        const run = await train({ config, dataName: '8gaussians', openData: (r) => new ToyStream('8gaussians', r), outDir: join(dir, 't'), steps: 1000, keepModel: true });
        const draw = async (r: typeof run): Promise<Float32Array> => {
          const s = await sampleModel(r.model!, diffusion, N, new Rng(5), { params: r.optim!.ema, clip: false });
          const xs = (await s.data()) as Float32Array;
          s.dispose();
          r.model!.dispose();
          disposeOptimState(r.optim!);
          return xs;
        };
        const trained = await draw(run);
        const before = await draw(untrained);
        const data = sampleToy('8gaussians', new Rng(6), N);
        const good = energyTest(trained, data, 2, new Rng(7), 199);
        const bad = energyTest(before, data, 2, new Rng(7), 199);
        expect(good.pValue, `energy statistic ${good.statistic.toFixed(4)}`).toBeGreaterThan(ALPHA);
        expect(bad.pValue, `the test has power: the untrained model's samples (statistic ${bad.statistic.toFixed(2)}) are rejected`).toBeLessThanOrEqual(ALPHA);
      } finally {
        diffusion.dispose();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('the two-sample test rejects two different toy distributions and accepts two samples of one  [training.toy.testCalibrated]', () => {
    const a = sampleToy('moons', new Rng(1), 300);
    const b = sampleToy('moons', new Rng(2), 300);
    const c = sampleToy('8gaussians', new Rng(3), 300);
    expect(energyTest(a, b, 2, new Rng(4), 199).pValue).toBeGreaterThan(ALPHA);
    expect(energyTest(a, c, 2, new Rng(4), 199).pValue).toBeLessThanOrEqual(ALPHA);
  });
});
