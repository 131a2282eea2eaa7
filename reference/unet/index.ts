/**
 * Ho et al.'s (2020) UNet on TensorFlow.js: configuration, parameters (PyTorch port names, reference
 * initialisation), forward pass, state-dict import/export and checkpoints.
 *
 * @module
 */
export { UNetConfig, CIFAR10_CONFIG, LSUN256_CONFIG, SMALL_CONFIG, TINY_CONFIG, GROUPS, NORM_EPS } from './config.ts';
export { paramSpecs, countParams, initParams, initValues, disposeParams, unetPlan, type ParamSpec, type ParamKind, type UNetParams, type UNetPlan } from './params.ts';
export { unetForward, LAYER_KINDS, type ForwardOptions, type LayerKind } from './model.ts';
export {
  paramsFromStateDict,
  stateDictFromParams,
  checkStateDict,
  readStateDict,
  writeStateDict,
  configFromMetadata,
  toTfLayout,
  toTorchLayout,
  describeProblem,
  WeightImportError,
  type WeightProblem,
} from './weights.ts';
export {
  saveCheckpoint,
  loadCheckpoint,
  readCheckpointConfig,
  CheckpointConfig,
  DiffusionSettings,
  HO_CIFAR10_DIFFUSION,
  CONFIG_FILE,
  WEIGHTS_FILE,
  EMA_FILE,
  type CheckpointContents,
} from './checkpoint.ts';
export { unetDenoiser } from './denoiser.ts';
