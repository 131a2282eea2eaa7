import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend.ts';
import { prepareTrainStep } from './reference/train/benchWorkload.ts';
import { SMALL_CONFIG, CIFAR10_CONFIG } from './reference/unet/config.ts';
await initBackend();
const which = process.argv[2] === 'cifar' ? CIFAR10_CONFIG : SMALL_CONFIG;
const b = Number(process.argv[3] ?? 8);
const p = prepareTrainStep(which as any, b, process.argv[4] ? Number(process.argv[4]) : undefined);
await p.run();
const t0 = performance.now(); await p.run(); console.log('step ms', (performance.now() - t0).toFixed(0));
const info = await tf.profile(async () => { await p.run(); });
const by = new Map<string, { ms: number; n: number }>();
let total = 0;
for (const k of info.kernels) {
  const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  const key = k.name === 'BatchMatMul' || k.name === 'Conv2D' ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
  const e = by.get(key) ?? { ms: 0, n: 0 }; e.ms += ms; e.n++; by.set(key, e); total += ms;
}
console.log('kernels', info.kernels.length, 'sum kernel ms', total.toFixed(0));
for (const [n, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30)) console.log(e.ms.toFixed(1).padStart(8), String(e.n).padStart(6), n.slice(0, 120));
