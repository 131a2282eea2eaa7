import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OP_NAMES, type OpName, type Tensor } from '../../src/conformance/ops.ts';
import { OP_SPECS } from '../../src/conformance/vocabulary.ts';
import {
  OpRequest,
  OkResponse,
  decodeCall,
  decodeResult,
  encodeCall,
  encodeResult,
  protocolJsonSchemaText,
} from '../../src/conformance/protocol.ts';
import { FormatError } from '../../src/formats/errors.ts';

const schemaPath = fileURLToPath(new URL('../../src/conformance/protocol.schema.json', import.meta.url));

/** Small tensors: rank 0–3, up to 3 per dimension (enough to exercise nesting); finite doubles, as the checker sends. */
const tensorArb: fc.Arbitrary<Tensor> = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).chain((shape) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }).map((d) => ({ shape, data: Float64Array.from(d) }));
});
/** Timesteps: non-negative integers below 4000 (the largest T in the golden data), as a [B] tensor. */
const tArb: fc.Arbitrary<Tensor> = fc.array(fc.integer({ min: 0, max: 3999 }), { minLength: 1, maxLength: 4 }).map((d) => ({ shape: [d.length], data: Float64Array.from(d) }));

/** Arguments valid for each op's args schema (the values matter only for the round trip). */
function argsFor(op: OpName): Record<string, unknown> {
  const betas: Tensor = { shape: [3], data: Float64Array.from([1e-4, 0.02, 0.5]) };
  switch (op) {
    case 'schedule':
      return { family: 'ho', name: 'linear', T: 10, beta_start: 1e-4, beta_end: 0.02 };
    case 'buffers':
      return { betas };
    case 'timestep_embedding':
      return { flavor: 'improved', dim: 7 };
    case 'space_timesteps':
      return { num_timesteps: 1000, section_counts: 'ddim20' };
    case 'respace':
      return { betas, use_timesteps: [0, 2] };
    case 'training_losses':
      return { betas, model_mean_type: 'EPSILON', model_var_type: 'LEARNED_RANGE', loss_type: 'RESCALED_MSE', grads: true, rescale_timesteps: true };
    case 'ddim_step':
      return { betas, clip_denoised: true, eta: 0.5, timestep_map: [0, 50, 100] };
    case 'diffusers_set_timesteps':
      return { timestep_spacing: 'trailing', num_inference_steps: 10 };
    case 'diffusers_ddpm_variance':
    case 'diffusers_ddpm_step':
      return { t: 5, variance_type: 'learned_range', num_inference_steps: 10, buffers: 'float32' };
    case 'diffusers_ddim_step':
      return { t: 5, eta: 0.5, use_clipped_model_output: true, num_inference_steps: 10, set_alpha_to_one: false };
    case 'p_mean_variance':
    case 'calc_bpd_loop':
    case 'p_sample_step':
    case 'ddim_reverse_step':
      return { betas, clip_denoised: false, model_var_type: 'FIXED_LARGE' };
    default:
      return OP_SPECS[op].argTensors.includes('betas') ? { betas } : {};
  }
}

const sameTensor = (a: Tensor, b: Tensor): void => {
  expect(a.shape).toEqual(b.shape);
  expect(Array.from(a.data)).toEqual(Array.from(b.data).map((v) => (Object.is(v, -0) ? 0 : v)));
};

describe('8.1 The --impl protocol: messages, JSON Schema, and the codec between operations and messages', () => {
  it('the committed JSON Schema is the one the zod schemas generate  [conformance.protocol.schemaUpToDate]', () => {
    const committed = readFileSync(schemaPath, 'utf8');
    expect(committed, 'src/conformance/protocol.schema.json is out of date: run `npx tsx src/conformance/protocol.ts` and commit it').toBe(protocolJsonSchemaText());
  });

  it('the schema describes a request and the outputs of every operation  [conformance.protocol.schemaCoversOps]', () => {
    const defs = (JSON.parse(readFileSync(schemaPath, 'utf8')) as { $defs: Record<string, { required?: string[] }> }).$defs;
    for (const op of OP_NAMES) {
      expect(defs[`Request.${op}`], op).toBeDefined();
      expect(defs[`Outputs.${op}`]?.required ?? [], op).toEqual([...OP_SPECS[op].outputs]);
    }
  });

  it('decoding a request gives back the parameters it was encoded from, after a trip through JSON text  [conformance.protocol.callRoundTrip]', () =>
    fc.assert(
      fc.property(fc.constantFrom(...OP_NAMES), fc.array(tensorArb, { minLength: 5, maxLength: 5 }), tArb, (op, tensors, t) => {
        const spec = OP_SPECS[op];
        let k = 0;
        const params = spec.params.map((p) => {
          if (p === 'args') return argsFor(op);
          if (p === 'model') return op === 'training_losses' || k % 2 === 0 ? { kind: 'tiny', W: tensors[0], bias: tensors[1], tw: tensors[2] } : { kind: 'output', output: tensors[3] };
          return p === 't' ? t : tensors[k++ % tensors.length];
        });
        const { args, inputs } = encodeCall(op, params);
        const wire = JSON.parse(JSON.stringify({ id: 1, op, args, inputs }));
        expect(OpRequest.safeParse(wire).success).toBe(true);
        expect(wire.inputs.t?.dtype ?? 'int64').toBe('int64');
        const back = decodeCall(op, wire.args, wire.inputs, 'test');
        expect(back.length).toBe(params.length);
        back.forEach((b, i) => {
          const p = params[i] as Record<string, unknown>;
          if ('shape' in p) return sameTensor(b as Tensor, p as unknown as Tensor);
          for (const [key, v] of Object.entries(p)) {
            const got = (b as Record<string, unknown>)[key];
            if (v !== null && typeof v === 'object' && 'shape' in v) sameTensor(got as Tensor, v as Tensor);
            else expect(got).toEqual(v);
          }
        });
      }),
      { numRuns: 60 },
    ));

  it('decoding an answer gives back the result it was encoded from, nested names included  [conformance.protocol.resultRoundTrip]', () =>
    fc.assert(
      fc.property(fc.constantFrom(...OP_NAMES), tensorArb, (op, x) => {
        const spec = OP_SPECS[op];
        let result: unknown;
        if (op === 'space_timesteps') result = { timesteps: [0, 50, 100] };
        else if (op === 'respace') result = { betas: x, timestep_map: [0, 7] };
        else if (op === 'training_losses') result = { terms: { loss: x, vb: x }, grads: { loss: { W: x, bias: x, tw: x } } };
        else result = Object.fromEntries(spec.outputs.map((n) => [n, x]));
        const outputs = JSON.parse(JSON.stringify(encodeResult(op, result)));
        expect(OkResponse.safeParse({ id: 3, outputs }).success).toBe(true);
        const back = decodeResult(op, outputs, 'test') as Record<string, unknown>;
        expect(JSON.stringify(back, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v))).toBe(
          JSON.stringify(result, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array).map((e) => (Object.is(e, -0) ? 0 : e)) : v)),
        );
      }),
      { numRuns: 60 },
    ));

  it('an answer without a required output is rejected, naming the answer and the output  [conformance.protocol.missingOutputNamed]', () => {
    const x = { dtype: 'float64', shape: [1], data: [0] };
    try {
      decodeResult('p_mean_variance', { mean: x, variance: x, pred_xstart: x }, 'answer to p_mean_variance (request 4)');
      expect.unreachable('accepted an answer without log_variance');
    } catch (e) {
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).file).toBe('answer to p_mean_variance (request 4)');
      expect((e as FormatError).field).toBe('outputs.log_variance');
    }
  });

  it('a request with malformed args is rejected, naming the field  [conformance.protocol.badArgsNamed]', () => {
    const t = { dtype: 'int64', shape: [1], data: [0] };
    expect(() => decodeCall('ddim_step', { clip_denoised: true, model: 'output', eta: -1 }, { betas: t, x: t, t, noise: t, 'model.output': t }, 'request 9')).toThrow(/request 9: args\.eta/);
    expect(() => decodeCall('q_sample', {}, { betas: t, x_start: t, t }, 'request 10')).toThrow(/request 10: inputs\.noise: missing/);
  });
});
