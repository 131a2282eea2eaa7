/**
 * Helpers of the training-loop properties: checkpoints as bytes, and the error a run ends with.
 */
import { readTrainCheckpoint } from '../../../reference/train/checkpoint.ts';

/** Every tensor of a checkpoint directory as base64 bytes, for bit-for-bit comparison. */
export function tensorBytes(dir: string): Map<string, string> {
  const ck = readTrainCheckpoint(dir);
  return new Map([...ck.tensors].map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]));
}

/** Names of the tensors whose bytes differ between two checkpoints (empty when bit-identical). */
export function differing(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k));
}

/** The error `p` rejects with; fails when it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, but it succeeded');
}
