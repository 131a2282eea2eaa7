/**
 * The fast-check seed of a test run: `FC_SEED` when set (an integer), else the project's default.
 * The same seed gives the same generated cases on every machine.
 */
export const DEFAULT_FC_SEED = 20261125;

export function fcSeed(env: Record<string, string | undefined> = process.env): number {
  const raw = env.FC_SEED;
  if (raw === undefined || raw.trim() === '') return DEFAULT_FC_SEED;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new RangeError(`FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return n | 0;
}
