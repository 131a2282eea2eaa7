import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneLine } from '../../src/cli/boundary.ts';
import { OP_NAMES } from '../../src/conformance/ops.ts';
import { decodeCall, decodeResult, encodeCall } from '../../src/conformance/protocol.ts';
import { OP_SPECS } from '../../src/conformance/vocabulary.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { decodeTensor, encodeTensor } from '../../src/formats/jsonTensor.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/formats/safetensors.ts';
import { ScheduleIndex } from '../../src/golden/context.ts';
import { readGoldenJson } from '../../src/golden/index.ts';
import { parseTrainConfig, PRESETS } from '../../reference/train/config.ts';

/**
 * Cases per parser: 1000 by default (a few seconds in all); `DDPM_FUZZ_RUNS=N` runs N (e.g. 100000 before a
 * release). Every case must either parse or raise a {@link FormatError} that names the field; any other
 * exception (a TypeError from reading a property of undefined, a RangeError from a huge allocation) fails.
 */
const RUNS = Number(process.env.DDPM_FUZZ_RUNS ?? 1000);
if (!Number.isSafeInteger(RUNS) || RUNS < 1) throw new RangeError(`DDPM_FUZZ_RUNS must be a positive integer, got ${JSON.stringify(process.env.DDPM_FUZZ_RUNS)}`);

/** Run `f`; it may succeed, or throw a FormatError naming `file` and a field; the message fits one printed line. */
function parsesOrNamesTheField(f: () => unknown, file: string): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof FormatError)) throw new Error(`expected a FormatError or success, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
    expect(e.file, e.message).toBe(file);
    expect(typeof e.field).toBe('string');
    expect(e.problem.length, e.message).toBeGreaterThan(0);
    expect(Buffer.byteLength(oneLine(e.message))).toBeLessThanOrEqual(2000);
    expect(oneLine(e.message)).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
  }
}

/** A JSON value with a bias towards the shapes parsers look for (objects, lists, numbers, odd numbers). */
const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(0, -1, 1, 2, 1e308, -0, 0.5, 2 ** 53, null, true, '', 'nan', 'inf', 'F32', 'float32', '__metadata__'),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('dtype', 'shape', 'data', 'data_offsets', 'x', '__metadata__', 'meta', 'cases'), tie('v'), { maxKeys: 4 }),
  ),
})).v;

/** A path into a JSON tree, as a list of choices (each taken modulo the number of children). */
const pathArb = fc.array(fc.nat(), { minLength: 1, maxLength: 8 });

/** Replace (or delete, with `value` undefined) the node that `choices` lead to; returns a function that undoes it. */
function mutateAt(root: unknown, choices: number[], value: unknown): () => void {
  let node = root as Record<string, unknown>;
  for (let i = 0; ; i++) {
    const keys = Object.keys(node);
    if (keys.length === 0) return () => {};
    const k = keys[choices[i] % keys.length];
    const child = node[k];
    const leaf = i === choices.length - 1 || typeof child !== 'object' || child === null || Object.keys(child).length === 0;
    if (leaf) {
      const parent = node;
      if (value === undefined) delete parent[k];
      else parent[k] = value;
      return () => {
        parent[k] = child;
      };
    }
    node = child as Record<string, unknown>;
  }
}

const validSafetensors = fc
  .array(
    fc.record({
      name: fc.stringMatching(/^[a-z]{1,4}$/),
      dtype: fc.constantFrom('F32' as const, 'F64' as const),
      shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .map((ts) => serializeSafetensors(ts.map((t, i) => [`${t.name}${i}`, { dtype: t.dtype, shape: t.shape, data: new Array(t.shape.reduce((a, b) => a * b, 1)).fill(1.5) }]), { note: 'x' }));

/** A header (as JSON text) put in front of `dataBytes` bytes, with its true length or another one. */
function withHeader(text: string, dataBytes: number, lengthDelta = 0): Uint8Array {
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, h.length + lengthDelta)), true);
  out.set(h, 8);
  return out;
}

describe('0.5.3 Data formats under fuzzing: every malformed input is a FormatError naming the field', () => {
  it(`safetensors: random bytes, corrupted and truncated files, and random headers are parsed or refused naming the field (${RUNS} cases each)  [formats.fuzz.safetensors]`, () => {
    const f = 'fuzz.safetensors';
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => parsesOrNamesTheField(() => parseSafetensors(b, f), f)), { numRuns: RUNS });
    fc.assert(
      fc.property(validSafetensors, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (file, flips, cut) => {
        const b = file.slice(0, file.length - (cut % 3 === 0 ? cut % (file.length + 1) : 0));
        for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
        parsesOrNamesTheField(() => parseSafetensors(b, f), f);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(jsonish, fc.nat({ max: 64 }), fc.integer({ min: -3, max: 3 }), (header, dataBytes, delta) => {
        parsesOrNamesTheField(() => parseSafetensors(withHeader(JSON.stringify(header) ?? 'null', dataBytes, delta), f), f);
      }),
      { numRuns: RUNS },
    );
  });

  it('a header that names a tensor twice is refused as a duplicate, identical entries included  [formats.fuzz.duplicateNames]', () =>
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z]{1,6}$/), fc.boolean(), (name, identical) => {
        const e1 = `{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`;
        const e2 = identical ? e1 : `{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`;
        const bytes = withHeader(`{"${name}":${e1},"${name}":${e2}}`, identical ? 4 : 8);
        expect(() => parseSafetensors(bytes, 'dup.safetensors')).toThrow(`dup.safetensors: "${name}": the header names this tensor twice (duplicate key)`);
      }),
    ));

  it('a header of raw bytes (NULs) is refused without echoing them  [formats.fuzz.noRawBytes]', () => {
    const bytes = withHeader('\u0000\u0000\u0000{"a":1}', 0);
    let message = '';
    try {
      parseSafetensors(bytes, 'nul.safetensors');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^nul\.safetensors: header: not valid JSON/);
    expect(message).not.toMatch(/\u0000/);
  });

  it(`JSON tensors: random values and corrupted tensors decode or are refused naming the field (${RUNS} cases each)  [formats.fuzz.jsonTensor]`, () => {
    const f = 'fuzz.json';
    fc.assert(fc.property(jsonish, (v) => parsesOrNamesTheField(() => decodeTensor(v, f, 'x'), f)), { numRuns: RUNS });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }), pathArb, fc.option(jsonish, { nil: undefined }), (shape, path, value) => {
        const t = encodeTensor('float32', shape, new Array(shape.reduce((a, b) => a * b, 1)).fill(0.25)) as unknown;
        mutateAt(t, path, value);
        parsesOrNamesTheField(() => decodeTensor(t, f, 'x'), f);
      }),
      { numRuns: RUNS },
    );
  });

  it(`golden records: a real golden file with one node replaced or removed is read or refused naming the field (${RUNS} cases per file)  [formats.fuzz.goldenRecord]`, () => {
    for (const name of ['id_buffers_cosine_T20.json', 'id_q_functions.json']) {
      const root = JSON.parse(readFileSync(join(import.meta.dirname, '../../golden/upstream', name), 'utf8')) as unknown;
      fc.assert(
        fc.property(pathArb, fc.option(jsonish, { nil: undefined }), (path, value) => {
          const undo = mutateAt(root, path, value);
          try {
            parsesOrNamesTheField(() => readGoldenJson(name, root, new ScheduleIndex()), name);
          } finally {
            undo();
          }
        }),
        { numRuns: RUNS },
      );
    }
  });

  it(`training configurations: a preset with one field replaced or removed is valid or refused naming the field (${RUNS} cases)  [formats.fuzz.trainConfig]`, () =>
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(PRESETS)), pathArb, fc.option(jsonish, { nil: undefined }), (preset, path, value) => {
        const c = structuredClone(preset) as unknown;
        mutateAt(c, path, value);
        parsesOrNamesTheField(() => parseTrainConfig(c, 'fuzz-config.json'), 'fuzz-config.json');
      }),
      { numRuns: RUNS },
    ));

  it(`protocol messages: requests and answers with one node replaced or removed decode or are refused naming the field (${RUNS} cases each)  [formats.fuzz.protocol]`, () => {
    const where = 'response 1';
    fc.assert(
      fc.property(fc.constantFrom(...OP_NAMES), fc.dictionary(fc.string({ maxLength: 6 }), jsonish, { maxKeys: 4 }), (op, outputs) => {
        const named = Object.fromEntries(OP_SPECS[op].outputs.map((o, i) => [o, Object.values(outputs)[i] ?? outputs[o]]));
        parsesOrNamesTheField(() => decodeResult(op, { ...outputs, ...named }, where), where);
      }),
      { numRuns: RUNS },
    );
    const tensor = (data: number[]): { shape: number[]; data: Float64Array } => ({ shape: [data.length], data: Float64Array.from(data) });
    const valid = encodeCall('q_sample', [{ betas: tensor([0.1, 0.2, 0.3]), model_var_type: 'fixedlarge' }, tensor([0.5, -0.5]), tensor([0, 2]), tensor([1, -1])]);
    fc.assert(
      fc.property(pathArb, fc.option(jsonish, { nil: undefined }), (path, value) => {
        const msg = structuredClone(valid) as unknown;
        mutateAt(msg, path, value);
        const m = msg as { args: Record<string, unknown>; inputs: Record<string, unknown> };
        parsesOrNamesTheField(() => decodeCall('q_sample', m.args ?? {}, m.inputs ?? {}, 'request 1'), 'request 1');
      }),
      { numRuns: RUNS },
    );
  });
});
