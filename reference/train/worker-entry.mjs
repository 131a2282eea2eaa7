// Entry point of a gradient worker thread: registers the TypeScript loader in this thread, then loads the worker
// module named in workerData (reference/train/gradWorker.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
