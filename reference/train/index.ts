/**
 * Training the reference DDPM: configuration (the paper's recipe as defaults), the loop, the optimiser (Adam,
 * warm-up, clipping, EMA), checkpoints, data sources, data-parallel worker threads, evaluation (samples,
 * bits/dim) and the training-step benchmark workload. See `docs/training.md`.
 *
 * @module
 */
export { TrainConfig, OptimConfig, DiffusionTrainConfig, ModelConfig, PRESETS, parseTrainConfig, readTrainConfig } from './config.ts';
export { createModel, type TrainableModel } from './model.ts';
export {
  initOptimState,
  disposeOptimState,
  optimStep,
  optimStepFlat,
  globalNorm,
  learningRate,
  ownedVariable,
  flatLayout,
  emaWeights,
  optimBufferByName,
  setOptimBuffer,
  type FlatLayout,
  type OptimBuffer,
  type OptimImpl,
  type OptimState,
} from './optim.ts';
export { describeParallelism, fasterWorkers, workerCandidates, type ParallelismChoice } from './parallelism.ts';
export { ImageEpochs, ToyStream, openDataset, DATASETS, BatchSourceState, type BatchSource, type DatasetName } from './data.ts';
export {
  saveTrainCheckpoint,
  readTrainCheckpoint,
  latestCheckpointDir,
  listCheckpoints,
  checkCheckpointFits,
  restoreTensors,
  removeStaleTemporaries,
  prepareOutDir,
  TrainState,
  TRAIN_STATE_FILE,
  LATEST_LINK,
  type LoadedCheckpoint,
} from './checkpoint.ts';
export {
  train,
  trainingStep,
  drawStep,
  diffusionFor,
  exampleShapeOf,
  TrainingDivergedError,
  LogRecord,
  LOG_FILE,
  type TrainOptions,
  type TrainResult,
  type Progress,
  type StepDraws,
  type StepResult,
} from './loop.ts';
export { GradientWorkers, shardRanges } from './parallel.ts';
export { sampleModel, bitsPerDim, denoiser, loadForEvaluation, type BpdSummary } from './evaluate.ts';
export { prepareTrainStep, timeTrainSteps, torchTrainSteps, trainStepRows, formatRows, DEFAULT_TRAIN_STEP_WORKLOADS, type TrainStepWorkload } from './benchWorkload.ts';
