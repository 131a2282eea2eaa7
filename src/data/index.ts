/**
 * Training data: Fashion-MNIST from Debian's package (IDX reader with checks) and 2-D toy distributions.
 *
 * @module
 */
export { parseIdx, readIdx, IDX_UBYTE, type IdxArray } from './idx.ts';
export {
  loadFashionMnist,
  resizeLevels,
  levelsToUnit,
  unitToLevels,
  toModelImages,
  FASHION_MNIST_DIR,
  FASHION_MNIST_INSTALL,
  FASHION_MNIST_COUNT,
  FASHION_MNIST_SIZE,
  type ImageSet,
  type Split,
} from './fashionMnist.ts';
export { moons, swissroll, eightGaussians, sampleToy, TOY_DATASETS, type ToyDataset } from './toy2d.ts';
