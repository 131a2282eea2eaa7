/**
 * Batches for the training loop, drawn from a seeded stream whose state goes into checkpoints, so a resumed
 * run sees exactly the batches the uninterrupted run would have seen.
 *
 * - Images: shuffled epochs without replacement (a Fisher–Yates permutation per epoch); the state is the
 *   stream's state at the start of the epoch and the position in it (the permutation is redrawn on resume).
 * - 2-D toy sets: fresh points every batch (an infinite dataset); the state is the stream's state.
 *
 * @module
 */
import { z } from 'zod';
import { FASHION_MNIST_DIR, levelsToUnit, loadFashionMnist, resizeLevels, type Split } from '../../src/data/fashionMnist.ts';
import { sampleToy, TOY_DATASETS, type ToyDataset } from '../../src/data/toy2d.ts';
import { Rng, RngState } from '../../src/numeric/rng.ts';

/** The data sets the CLI knows. */
export const DATASETS = ['fashion-mnist', ...TOY_DATASETS] as const;
export type DatasetName = (typeof DATASETS)[number];

export const BatchSourceState = z
  .object({
    kind: z.enum(['epochs', 'stream']),
    rng: RngState,
    /** epochs: position in the current permutation; epoch number. */
    cursor: z.number().int().nonnegative().optional(),
    epoch: z.number().int().nonnegative().optional(),
  })
  .strict();
export type BatchSourceState = z.infer<typeof BatchSourceState>;

/** A source of training batches. */
export interface BatchSource {
  readonly name: string;
  /** Shape of one example. */
  readonly exampleShape: readonly number[];
  /** The next batch, row-major [batchSize, …exampleShape], float32 in the model's input range. */
  next(batchSize: number): Float32Array;
  getState(): BatchSourceState;
  setState(s: BatchSourceState): void;
}

/** Shuffled epochs over images stored as pixel levels (converted to [−1, 1] per batch). */
export class ImageEpochs implements BatchSource {
  private rng: Rng;
  private epochStart: RngState;
  private perm: Uint32Array;
  private cursor = 0;
  private epoch = 0;
  readonly exampleShape: readonly number[];
  private readonly size: number;

  constructor(
    readonly name: string,
    private readonly levels: Uint8Array,
    private readonly count: number,
    exampleShape: readonly number[],
    rng: Rng,
  ) {
    this.exampleShape = exampleShape;
    this.size = exampleShape.reduce((a, b) => a * b, 1);
    if (levels.length !== count * this.size) throw new Error(`ImageEpochs: ${levels.length} levels are not ${count} examples of shape [${exampleShape}]`);
    this.rng = rng;
    this.epochStart = rng.getState();
    this.perm = this.permutation();
  }

  private permutation(): Uint32Array {
    const p = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) p[i] = i;
    for (let i = this.count - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  next(batchSize: number): Float32Array {
    const out = new Float32Array(batchSize * this.size);
    for (let b = 0; b < batchSize; b++) {
      if (this.cursor === this.count) {
        this.epoch++;
        this.cursor = 0;
        this.epochStart = this.rng.getState();
        this.perm = this.permutation();
      }
      const i = this.perm[this.cursor++];
      out.set(levelsToUnit(this.levels.subarray(i * this.size, (i + 1) * this.size)), b * this.size);
    }
    return out;
  }

  getState(): BatchSourceState {
    return { kind: 'epochs', rng: this.epochStart, cursor: this.cursor, epoch: this.epoch };
  }

  setState(s: BatchSourceState): void {
    if (s.kind !== 'epochs' || s.cursor === undefined || s.epoch === undefined) throw new Error(`ImageEpochs.setState: expected an 'epochs' state with cursor and epoch, got ${JSON.stringify(s).slice(0, 100)}`);
    if (s.cursor > this.count) throw new Error(`ImageEpochs.setState: cursor ${s.cursor} is past the ${this.count} examples`);
    this.rng = Rng.fromState(s.rng);
    this.epochStart = s.rng;
    this.perm = this.permutation();
    this.cursor = s.cursor;
    this.epoch = s.epoch;
  }
}

/** Fresh points of a 2-D toy distribution for every batch. */
export class ToyStream implements BatchSource {
  readonly exampleShape = [2] as const;
  constructor(
    readonly name: ToyDataset,
    private rng: Rng,
  ) {}
  next(batchSize: number): Float32Array {
    return sampleToy(this.name, this.rng, batchSize);
  }
  getState(): BatchSourceState {
    return { kind: 'stream', rng: this.rng.getState() };
  }
  setState(s: BatchSourceState): void {
    if (s.kind !== 'stream') throw new Error(`ToyStream.setState: expected a 'stream' state, got '${s.kind}'`);
    this.rng = Rng.fromState(s.rng);
  }
}

/**
 * The batch source of a named data set at the model's example shape.
 *
 * @param exampleShape - [H, W, C] for images (Fashion-MNIST is padded or shrunk to H), [2] for toy sets
 */
export function openDataset(name: DatasetName, exampleShape: readonly number[], rng: Rng, opts: { split?: Split; dir?: string } = {}): BatchSource {
  if (name === 'fashion-mnist') {
    if (exampleShape.length !== 3 || exampleShape[2] !== 1 || exampleShape[0] !== exampleShape[1]) {
      throw new Error(`fashion-mnist is 1-channel square images; the model takes examples of shape [${exampleShape}] (use a UNet with in_channels 1)`);
    }
    const set = loadFashionMnist(opts.split ?? 'train', { dir: opts.dir ?? FASHION_MNIST_DIR });
    const levels = resizeLevels(set, exampleShape[0]);
    return new ImageEpochs(name, levels, set.count, exampleShape, rng);
  }
  if ((TOY_DATASETS as readonly string[]).includes(name)) {
    if (exampleShape.length !== 1 || exampleShape[0] !== 2) throw new Error(`${name} is 2-D points; the model takes examples of shape [${exampleShape}] (use an MLP with in_dim 2)`);
    return new ToyStream(name as ToyDataset, rng);
  }
  throw new Error(`unknown data set ${JSON.stringify(name)}; expected one of ${DATASETS.join(', ')}`);
}
