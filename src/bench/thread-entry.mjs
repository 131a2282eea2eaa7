// Entry point of a benchmark worker thread: registers the TypeScript loader in this thread, then imports the
// module named in workerData.module (a URL).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
