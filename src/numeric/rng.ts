/**
 * A seeded random stream: xoroshiro128+ (pure-rand) for uniforms, Box–Muller for standard normals.
 *
 * The output depends only on the seed: it is the same on every run and every machine with the same
 * JavaScript engine (V8's `Math.log`, `Math.sqrt`, `Math.cos`, `Math.sin` are deterministic software
 * implementations). A property pins the first values for a fixed seed so that any change shows.
 *
 * Randomness is always an argument in this project: functions take an `Rng` or pre-drawn noise.
 *
 * @module
 */
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
import { z } from 'zod';

/** Serialisable state of an {@link Rng}, for checkpoints. */
export const RngState = z
  .object({
    generator: z.array(z.number().int()),
    /** The second Box–Muller value, kept for the next call, or null. */
    spare: z.number().finite().nullable(),
  })
  .strict();
export type RngState = z.infer<typeof RngState>;

/**
 * Expand a 32-bit seed into xoroshiro128+'s 128-bit state with splitmix32, so that nearby seeds give
 * unrelated streams (seeding the state with the seed directly makes the first draws of seeds 0, 1, 2, …
 * nearly equal).
 */
function seedState(seed: number): number[] {
  let x = seed | 0;
  const next = (): number => {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) | 0;
  };
  const s = [next(), next(), next(), next()];
  if (!s.some((w) => w !== 0)) s[0] = 1; // the all-zero state is a fixed point
  return s;
}

/** A mutable seeded stream of uniform and standard-normal numbers. */
export class Rng {
  private gen: JumpableRandomGenerator;
  private spare: number | null = null;

  /** @param seed - any 32-bit integer (other numbers are rejected) */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 32) {
      throw new RangeError(`Rng: seed must be an integer in [-2^31, 2^32), got ${seed}`);
    }
    this.gen = xoroshiro128plusFromState(seedState(seed | 0));
  }

  /** Restore a stream from {@link Rng.getState}. */
  static fromState(state: RngState): Rng {
    const s = RngState.parse(state);
    const r = new Rng(0);
    r.gen = xoroshiro128plusFromState(s.generator);
    r.spare = s.spare;
    return r;
  }

  /** The stream's state; `Rng.fromState(r.getState())` continues exactly where `r` is. */
  getState(): RngState {
    return { generator: [...this.gen.getState()], spare: this.spare };
  }

  /** An independent copy at the same position. */
  clone(): Rng {
    return Rng.fromState(this.getState());
  }

  /**
   * A new stream that does not overlap this one for 2⁶⁴ draws (xoroshiro's jump), leaving this one
   * advanced past it. Use it to give sub-tasks their own streams.
   */
  split(): Rng {
    const child = Rng.fromState(this.getState());
    child.spare = null;
    this.gen.jump();
    this.spare = null;
    return child;
  }

  /** Uniform on [0, 1), a multiple of 2⁻⁵³. */
  uniform(): number {
    return uniformFloat64(this.gen);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** One standard-normal draw (Box–Muller; each pair of uniforms gives two normals). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** n standard-normal draws. */
  normals(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** n uniform draws on [0, 1). */
  uniforms(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform();
    return out;
  }
}
