/**
 * Per-test-file set-up: the backend, the fast-check seed, the closeness matchers, and a tensor-leak check
 * around every test (each test runs in its own tfjs scope; a test that leaves more tensors alive than it
 * found fails, naming the count).
 */
import { afterEach, beforeEach, expect } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { closeMatchers } from '../../src/numeric/matchers.ts';
import { fcSeed } from './seed.ts';

process.env.IS_TEST = 'true';
tf.env().set('IS_TEST', true);
await initBackend();
fc.configureGlobal({ seed: fcSeed(), numRuns: 100 });
expect.extend(closeMatchers);

let before = 0;
beforeEach(() => {
  tf.engine().startScope();
  before = tf.memory().numTensors;
});
afterEach((ctx) => {
  const leaked = tf.memory().numTensors - before;
  tf.engine().endScope();
  if (leaked > 0 && ctx.task.result?.state !== 'fail') {
    throw new Error(`tensor leak: this test left ${leaked} more tfjs tensor(s) alive than it started with (dispose them or use tf.tidy)`);
  }
});
