import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESETS, TrainConfig, parseTrainConfig, readTrainConfig } from '../../reference/train/config.ts';
import { FormatError } from '../../src/formats/errors.ts';

function problem(json: unknown): { field: string; message: string } {
  try {
    parseTrainConfig(json, 'run.json');
  } catch (e) {
    if (e instanceof FormatError) return { field: e.field, message: e.message };
    throw e;
  }
  throw new Error('expected the configuration to be rejected');
}

const mlp = { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 16, layers: 2, temb_dim: 8 } };

describe('7.4 Training configurations', () => {
  it('the built-in configurations are valid, and the Fashion-MNIST one is the recorded run\'s file  [training.config.presetsValid]', () => {
    for (const p of Object.values(PRESETS)) expect(TrainConfig.parse(p)).toEqual(p);
    expect(readTrainConfig(join(import.meta.dirname, '../../reference/train/configs/fashion-mnist.json'))).toEqual(PRESETS['fashion-mnist']);
  });

  it('an unknown field is refused, naming where it is and what it is called  [training.config.unknownField]', () => {
    expect(problem({ model: mlp, optim: { lrr: 1e-3 } })).toEqual({ field: 'optim', message: 'run.json: optim: Unrecognized key: "lrr"' });
    expect(problem({ model: mlp, epochs: 3 }).message).toContain('"epochs"');
  });

  it('a wrong type is refused, naming the field and the expected type  [training.config.wrongType]', () => {
    const p = problem({ model: mlp, optim: { lr: '2e-4' } });
    expect(p.field).toBe('optim.lr');
    expect(p.message).toContain('expected number');
    expect(problem({ model: mlp, batch_size: 12.5 }).field).toBe('batch_size');
    expect(problem({ model: { kind: 'unet', unet: { ch: 32 } } }).field).toMatch(/^model\.unet\./);
    expect(problem({ model: { kind: 'transformer' } }).field).toBe('model.kind');
  });

  it('the hybrid loss requires learned-range variances and an output of twice the input channels  [training.config.hybridConsistent]', () => {
    expect(problem({ model: mlp, diffusion: { loss: 'hybrid' } }).field).toBe('diffusion.model_var_type');
    expect(problem({ model: mlp, diffusion: { loss: 'hybrid', model_var_type: 'learned_range' } }).field).toBe('model.mlp.out_dim');
    expect(problem({ model: mlp, diffusion: { model_var_type: 'learned_range' } }).field).toBe('diffusion.loss');
    const ok = parseTrainConfig({ model: { ...mlp, mlp: { ...mlp.mlp, out_dim: 4 } }, diffusion: { loss: 'hybrid', model_var_type: 'learned_range' } }, 'run.json');
    expect(ok.diffusion.loss).toBe('hybrid');
    const unet = { ...(PRESETS['fashion-mnist'].model as { kind: 'unet'; unet: Record<string, unknown> }) };
    expect(problem({ model: unet, diffusion: { loss: 'hybrid', model_var_type: 'learned_range' } }).field).toBe('model.unet.out_ch');
  });

  it('a configuration file that is missing or not JSON is an error naming the file  [training.config.badFile]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    try {
      const f = join(dir, 'c.json');
      expect(() => readTrainConfig(f)).toThrow(`${f}: cannot read the configuration`);
      writeFileSync(f, '{"model": ');
      expect(() => readTrainConfig(f)).toThrow(`${f}: not valid JSON`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
