import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readJson, valueAt } from '../../src/formats/jsonTensor.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { CIFAR10_CONFIG, LSUN256_CONFIG, SMALL_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { countParams, initValues, paramSpecs } from '../../reference/unet/params.ts';
import { checkStateDict, describeProblem, toTfLayout, toTorchLayout } from '../../reference/unet/weights.ts';

const IO = 'golden/upstream/ho_unet_small_io.json';
const io = readJson(IO);

type IndexEntry = { name: string; shape: number[] };

/**
 * Valid UNet configurations, kept small: ch a multiple of 32 (every GroupNorm has 32 groups), 1–4 levels with
 * multipliers 1–4, resolution = 2^(levels−1)·k (exact halving), attention at a subset of the visited resolutions.
 */
const validConfig = fc
  .record({
    chK: fc.integer({ min: 1, max: 4 }), // ch = 32·k
    ch_mult: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
    num_res_blocks: fc.integer({ min: 1, max: 3 }),
    resK: fc.integer({ min: 1, max: 4 }), // resolution = 2^(levels−1)·k
    attnMask: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    in_channels: fc.integer({ min: 1, max: 4 }),
    out_ch: fc.integer({ min: 1, max: 6 }),
    dropout: fc.double({ min: 0, max: 0.9, noNaN: true }),
    resamp_with_conv: fc.boolean(),
  })
  .map(({ chK, resK, attnMask, ...r }) => {
    const resolution = 2 ** (r.ch_mult.length - 1) * resK;
    const visited = r.ch_mult.map((_, i) => resolution / 2 ** i);
    return { ...r, ch: 32 * chK, resolution, attn_resolutions: visited.filter((_, i) => attnMask[i]) };
  });

describe('6.1 The UNet: configuration and parameters', () => {
  it('the CIFAR-10 configuration has exactly 35,746,307 parameters  [unet.params.cifar10Count]', () => {
    expect(countParams(UNetConfig.parse(CIFAR10_CONFIG))).toBe(35_746_307);
  });

  it('names, shapes and order of the small model equal the PyTorch port’s state_dict, read from the golden file  [unet.params.namesMatchPort]', () => {
    const cfg = UNetConfig.parse(valueAt(io, 'meta.args', IO));
    const index = valueAt(io, 'state_dict_index', IO) as IndexEntry[];
    const ours = paramSpecs(cfg).map((s) => ({ name: s.name, shape: s.torchShape }));
    expect(ours).toEqual(index.map((e) => ({ name: e.name, shape: e.shape })));
    expect(countParams(cfg)).toBe(1_105_665);
  });

  it('names, shapes and count of the LSUN 256×256 model equal the port’s parameter index  [unet.params.lsunIndex]', () => {
    const lsun = valueAt(io, 'lsun_256_config_param_count', IO) as { config: unknown; num_parameters: number; state_dict_index: IndexEntry[] };
    const cfg = UNetConfig.parse(lsun.config);
    expect(cfg).toEqual(UNetConfig.parse(LSUN256_CONFIG));
    expect(paramSpecs(cfg).map((s) => ({ name: s.name, shape: s.torchShape }))).toEqual(lsun.state_dict_index.map((e) => ({ name: e.name, shape: e.shape })));
    expect(countParams(cfg)).toBe(lsun.num_parameters);
  });

  it('accepts every configuration the reference can build, and names are unique  [unet.config.acceptsValid]', () => {
    fc.assert(
      fc.property(validConfig, (raw) => {
        const cfg = UNetConfig.parse(raw);
        const names = paramSpecs(cfg).map((s) => s.name);
        expect(new Set(names).size).toBe(names.length);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses configurations the reference cannot build, naming the field or the layer  [unet.config.refusesInvalid]', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...SMALL_CONFIG, ch: 48 }, /GroupNorm down\.0\.block\.0\.norm1 would have 48 channels, not a multiple of 32/],
      [{ ...SMALL_CONFIG, resolution: 18 }, /resolution.*divisible by 2\^\(levels−1\) = 4/],
      [{ ...SMALL_CONFIG, attn_resolutions: [5] }, /attn_resolutions.*5 is not one of the resolutions the model visits \(16, 8, 4\)/],
      [{ ...SMALL_CONFIG, dropout: 1 }, /dropout/],
      [{ ...SMALL_CONFIG, ch_mult: [] }, /ch_mult/],
      [{ ...SMALL_CONFIG, extra: 1 }, /extra/],
    ];
    for (const [cfg, msg] of bad) {
      const r = UNetConfig.safeParse(cfg);
      expect(r.success, JSON.stringify(cfg)).toBe(false);
      const text = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      expect(text).toMatch(msg);
    }
  });
});

describe('6.2 The UNet: layouts and initialisation', () => {
  it('converting PyTorch layouts to ours and back is the identity, for every parameter kind  [unet.weights.layoutRoundTrip]', () => {
    const specs = paramSpecs(UNetConfig.parse(SMALL_CONFIG));
    const pick = ['conv_in.weight', 'temb.dense.0.weight', 'down.1.attn.0.q.weight', 'norm_out.weight', 'conv_out.bias'].map((n) => specs.find((s) => s.name === n)!);
    fc.assert(
      fc.property(fc.constantFrom(...pick), fc.integer(), (s, seed) => {
        const n = s.shape.reduce((a, b) => a * b, 1);
        const data = Float32Array.from(new Rng(seed | 0).normals(n));
        expect(Array.from(toTorchLayout(s, toTfLayout(s, data)))).toEqual(Array.from(data));
      }),
      { numRuns: 20 },
    );
  });

  it('puts PyTorch’s w[o,i,a,b] at our [a,b,i,o] for kernels and w[o,i] at [i,o] for dense layers  [unet.weights.layoutIndex]', () => {
    const specs = paramSpecs(UNetConfig.parse(SMALL_CONFIG));
    const conv = specs.find((s) => s.name === 'down.2.block.0.conv1.weight')!; // [64,32,3,3]
    const [O, I, KH, KW] = conv.torchShape;
    const torch = Float32Array.from({ length: O * I * KH * KW }, (_, j) => j);
    const tf = toTfLayout(conv, torch);
    for (const [o, i, a, b] of [
      [0, 0, 0, 0],
      [63, 31, 2, 2],
      [5, 7, 1, 2],
      [17, 3, 2, 0],
    ]) {
      expect(tf[((a * KW + b) * I + i) * O + o]).toBe(torch[((o * I + i) * KH + a) * KW + b]);
    }
    const dense = specs.find((s) => s.name === 'temb.dense.0.weight')!; // [128,32]
    const [DO, DI] = dense.torchShape;
    const td = toTfLayout(dense, Float32Array.from({ length: DO * DI }, (_, j) => j));
    expect(td[5 * DO + 100]).toBe(100 * DI + 5);
  });

  it('initialises weights and biases uniformly within ±1/√fan_in, norms to γ = 1, β = 0  [unet.init.pytorchRanges]', () => {
    const rng = new Rng(7);
    for (const s of paramSpecs(UNetConfig.parse(SMALL_CONFIG))) {
      const v = initValues(s, rng);
      if (s.kind === 'norm_scale') expect(v.every((x) => x === 1)).toBe(true);
      else if (s.kind === 'norm_shift' || s.zeroInit) expect(v.every((x) => x === 0)).toBe(true);
      else {
        const bound = 1 / Math.sqrt(s.fanIn);
        let max = 0;
        for (const x of v) max = Math.max(max, Math.abs(x));
        expect(max, s.name).toBeLessThanOrEqual(bound);
        // A uniform draw of n values reaches within bound·(1 − 10/n) of the edge except with probability ≈ e^−10.
        if (v.length >= 1000) expect(max, s.name).toBeGreaterThan(bound * (1 - 10 / v.length));
      }
    }
  });

  it('zero-initialises exactly the last convolution of each residual and attention branch and of the model  [unet.init.zeroLastConvs]', () => {
    const zero = paramSpecs(UNetConfig.parse(CIFAR10_CONFIG))
      .filter((s) => s.zeroInit)
      .map((s) => s.name.replace(/\.(weight|bias)$/, ''));
    const layers = [...new Set(zero)];
    expect(layers.every((n) => /\.(conv2|proj_out)$/.test(n) || n === 'conv_out')).toBe(true);
    // CIFAR-10: 4 levels × (2 down + 3 up) blocks + 2 middle = 22 conv2; attention at 16×16: 2 down + 3 up + middle = 6 proj_out; conv_out.
    expect(layers.filter((n) => n.endsWith('conv2')).length).toBe(22);
    expect(layers.filter((n) => n.endsWith('proj_out')).length).toBe(6);
    expect(layers).toContain('conv_out');
  });
});

describe('6.4 The UNet: importing state dicts', () => {
  const cfg = UNetConfig.parse(SMALL_CONFIG);
  const good = (): Map<string, { dtype: string; shape: number[] }> => new Map(paramSpecs(cfg).map((s) => [s.name, { dtype: 'F32', shape: s.torchShape }]));

  it('accepts the port’s state dict as it is  [unet.weights.acceptsPortStateDict]', () => {
    expect(checkStateDict(cfg, good())).toEqual([]);
  });

  it('reports every unknown, missing, mis-shaped and non-float tensor at once, by name, with both shapes  [unet.weights.reportsAllProblems]', () => {
    const sd = good();
    sd.delete('mid.attn_1.q.weight');
    sd.delete('conv_out.bias');
    sd.set('down.0.block.0.conv1.weight', { dtype: 'F32', shape: [32, 2, 3, 3] });
    sd.set('temb.dense.0.weight', { dtype: 'F32', shape: [32, 128] }); // transposed: PyTorch Linear is [out, in]
    sd.set('model.extra.weight', { dtype: 'F32', shape: [3] });
    sd.set('norm_out.weight', { dtype: 'I64', shape: [32] });
    const lines = checkStateDict(cfg, sd).map(describeProblem);
    expect(lines).toEqual(
      expect.arrayContaining([
        'mid.attn_1.q.weight: missing (expected shape [64,64,1,1])',
        'conv_out.bias: missing (expected shape [1])',
        'down.0.block.0.conv1.weight: expected shape [32,32,3,3], got [32,2,3,3]',
        'temb.dense.0.weight: expected shape [128,32], got [32,128]',
        'model.extra.weight: not a parameter of this model (shape [3])',
        'norm_out.weight: dtype I64, expected a floating type (F32, F64, F16, BF16)',
      ]),
    );
    expect(lines.length).toBe(6);
  });
});
