/**
 * Choosing and initialising the TensorFlow.js backend.
 *
 * Order of preference when nothing is forced:
 *
 * 1. `tensorflow`: libtensorflow through `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`;
 * 2. `webgpu`: Dawn (the `webgpu` npm package) on a **hardware** GPU adapter;
 * 3. `wasm`: `@tensorflow/tfjs-backend-wasm` (SIMD, single-threaded under Node), the default on a CPU machine;
 * 4. `cpu`: the plain-JavaScript backend (slow, always there).
 *
 * A software WebGPU adapter (Mesa's llvmpipe through lavapipe, SwiftShader) is never chosen
 * automatically, but `DDPM_BACKEND=webgpu` uses it: that runs the GPU code path on the CPU.
 *
 * `DDPM_BACKEND=<name>` (or the `name` option) forces a backend; when it cannot be set the error says
 * which package or device is missing and how to get it.
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import * as tf from '@tensorflow/tfjs';

/** The backends this project knows, in order of preference. */
export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** What a probe found out about one backend. */
export interface BackendProbe {
  name: BackendName;
  /** Can it be set if forced? */
  usable: boolean;
  /** Would automatic selection choose it (false for a software WebGPU adapter)? */
  automatic: boolean;
  /** One sentence: what was found, or what is missing and how to get it. */
  why: string;
}

/** What {@link initBackend} chose and why. */
export interface BackendReport {
  chosen: BackendName;
  /** Set when DDPM_BACKEND or the `name` option forced the choice. */
  forcedBy?: string;
  /** Probes run while choosing (in order), including the failed ones. */
  probes: BackendProbe[];
  /** For webgpu: the adapter's description. */
  adapter?: string;
}

/** Thrown when a forced backend cannot be set. */
export class BackendError extends Error {
  override name = 'BackendError';
}

const HOWTO_TENSORFLOW =
  '@tensorflow/tfjs-node-gpu 4.22.0 (an optional dependency) downloads libtensorflow from storage.googleapis.com at ' +
  'install time; that download is unreachable from this machine and now answers 403 upstream (tensorflow/tfjs#8742), ' +
  'and the library needs CUDA 11.2 with cuDNN 8.1. On a machine with those, run `npm install @tensorflow/tfjs-node-gpu@4.22.0` ' +
  '(or `@tensorflow/tfjs-node@4.22.0` for the CPU build) with a reachable libtensorflow (TF_CPP / the package README)';

const HOWTO_VULKAN =
  'install a Vulkan loader and driver: `apt-get install libvulkan1` plus the GPU vendor driver; for a software adapter on a CPU ' +
  'machine add Debian bookworm-backports and `apt-get install -t bookworm-backports mesa-vulkan-drivers` (Mesa ≥ 25; see README)';

function errorText(e: unknown): string {
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : e.message.split('\n')[0];
  return String(e);
}

/** Is a backend factory registered with the engine (whether or not it has been initialised)? */
function isRegistered(name: string): boolean {
  return name in (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory;
}

async function setAndCheck(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return false;
    await tf.ready();
    // tf.setBackend can resolve true only to leave a broken backend; check it is really the one in use.
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

// ---- tensorflow ---------------------------------------------------------------------------------

async function probeTensorflow(): Promise<BackendProbe> {
  const tried: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (isRegistered('tensorflow')) {
        return { name: 'tensorflow', usable: true, automatic: true, why: `${pkg} loaded libtensorflow` };
      }
      tried.push(`${pkg}: imported but registered no 'tensorflow' backend`);
    } catch (e) {
      tried.push(`${pkg}: ${errorText(e)}`);
    }
  }
  return { name: 'tensorflow', usable: false, automatic: false, why: `${tried.join('; ')}. ${HOWTO_TENSORFLOW}` };
}

// ---- webgpu -------------------------------------------------------------------------------------

let webgpuAdapterInfo: { description: string; software: boolean } | null | undefined;

/** Is an adapter a software rasteriser (llvmpipe/lavapipe, SwiftShader, WARP)? */
function isSoftwareAdapter(adapter: GPUAdapter, info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return (
    Boolean((adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
    /llvmpipe|lavapipe|swiftshader|software|warp/.test(text)
  );
}

async function webgpuAdapter(): Promise<{ description: string; software: boolean }> {
  if (webgpuAdapterInfo) return webgpuAdapterInfo;
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new BackendError(`the 'webgpu' package (Dawn for Node) could not be loaded: ${errorText(e)}; run npm ci`);
  }
  let gpu: GPU;
  try {
    const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
    if (!g.navigator?.gpu) {
      Object.assign(globalThis, mod.globals);
      gpu = mod.create([]);
      if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
      else g.navigator = { gpu };
    } else gpu = g.navigator.gpu;
  } catch (e) {
    throw new BackendError(`Dawn could not start (${errorText(e)}); ${HOWTO_VULKAN}`);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) throw new BackendError(`Dawn found no Vulkan adapter; ${HOWTO_VULKAN}`);
  const info = adapter.info;
  const description = [info.description, info.vendor, info.architecture].filter((s) => s).join(', ');
  webgpuAdapterInfo = { description, software: isSoftwareAdapter(adapter, info) };
  return webgpuAdapterInfo;
}

/**
 * Is there a GPU device node at all (`/dev/dri/renderD*`, `/dev/nvidia*`, `/dev/dxg`)? Without one Dawn can only
 * find a software adapter, so automatic selection skips the Dawn probe (which also prints driver warnings).
 */
function gpuDeviceNodes(): string[] {
  const found: string[] = [];
  try {
    for (const f of readdirSync('/dev/dri')) if (f.startsWith('renderD')) found.push(`/dev/dri/${f}`);
  } catch {
    // no /dev/dri
  }
  try {
    for (const f of readdirSync('/dev')) if (/^nvidia\d+$/.test(f) || f === 'dxg') found.push(`/dev/${f}`);
  } catch {
    // no /dev listing
  }
  return found;
}

async function probeWebgpu(): Promise<BackendProbe> {
  try {
    const a = await webgpuAdapter();
    return a.software
      ? {
          name: 'webgpu',
          usable: true,
          automatic: false,
          why: `only a software adapter (${a.description}): never chosen automatically; DDPM_BACKEND=webgpu uses it (slow, runs the GPU code path on the CPU)`,
        }
      : { name: 'webgpu', usable: true, automatic: true, why: `hardware adapter: ${a.description}` };
  } catch (e) {
    return { name: 'webgpu', usable: false, automatic: false, why: errorText(e) };
  }
}

async function registerWebgpu(): Promise<void> {
  await webgpuAdapter();
  if (!isRegistered('webgpu')) await import('@tensorflow/tfjs-backend-webgpu');
  if (!isRegistered('webgpu')) {
    throw new BackendError('@tensorflow/tfjs-backend-webgpu did not register: navigator.gpu was not set before it was imported');
  }
}

// ---- wasm ---------------------------------------------------------------------------------------

/**
 * WebAssembly is compiled by V8's optimising tier up front (`--no-liftoff`, process-wide, set before the first
 * module is compiled). With the baseline tier first, hot functions are re-compiled in background threads that
 * compete with the training's worker threads for the cores: the first 3–4 steps of a 2-worker training step ran
 * 1.5–1.9× slower (1552, 1421, 1226 ms, then 830), which also skewed a benchmark that times few steps. Start-up
 * costs about 50 ms more.
 */
async function registerWasm(): Promise<void> {
  setFlagsFromString('--no-liftoff');
  if (!isRegistered('wasm')) await import('@tensorflow/tfjs-backend-wasm');
}

// ---- choosing -----------------------------------------------------------------------------------

async function trySet(name: BackendName): Promise<BackendProbe> {
  switch (name) {
    case 'tensorflow': {
      const p = await probeTensorflow();
      if (p.usable && !(await setAndCheck('tensorflow'))) return { ...p, usable: false, why: 'libtensorflow loaded but setBackend(tensorflow) failed' };
      return p;
    }
    case 'webgpu': {
      const p = await probeWebgpu();
      if (!p.usable) return p;
      try {
        await registerWebgpu();
      } catch (e) {
        return { ...p, usable: false, why: errorText(e) };
      }
      if (!(await setAndCheck('webgpu'))) return { ...p, usable: false, why: `setBackend('webgpu') resolved false on ${webgpuAdapterInfo?.description}` };
      return p;
    }
    case 'wasm': {
      try {
        await registerWasm();
      } catch (e) {
        return { name, usable: false, automatic: false, why: `@tensorflow/tfjs-backend-wasm could not be loaded (${errorText(e)}); run npm ci` };
      }
      return (await setAndCheck('wasm'))
        ? { name, usable: true, automatic: true, why: 'WebAssembly with SIMD (single-threaded under Node)' }
        : { name, usable: false, automatic: false, why: "setBackend('wasm') resolved false: the .wasm binaries in @tensorflow/tfjs-backend-wasm/dist could not be loaded" };
    }
    case 'cpu':
      return (await setAndCheck('cpu'))
        ? { name, usable: true, automatic: true, why: 'plain JavaScript (always available, slow)' }
        : { name, usable: false, automatic: false, why: "setBackend('cpu') resolved false" };
  }
}

function parseName(raw: string, source: string): BackendName {
  const name = raw.trim().toLowerCase();
  if ((BACKENDS as readonly string[]).includes(name)) return name as BackendName;
  throw new BackendError(`${source}=${JSON.stringify(raw)} is not a backend; expected one of ${BACKENDS.join(', ')}`);
}

let current: BackendReport | null = null;

/**
 * Initialise tfjs on the best available backend, or on the forced one.
 *
 * @param opts.name - force this backend (takes precedence over the environment)
 * @param opts.env - environment to read `DDPM_BACKEND` from (default `process.env`)
 * @throws {@link BackendError} when a forced backend cannot be set, saying what is missing
 */
export async function initBackend(opts: { name?: string; env?: Record<string, string | undefined> } = {}): Promise<BackendReport> {
  const env = opts.env ?? process.env;
  const forcedRaw = opts.name ?? (env.DDPM_BACKEND && env.DDPM_BACKEND.trim() !== '' ? env.DDPM_BACKEND : undefined);
  if (env.IS_TEST || env.VITEST) tf.env().set('IS_TEST', true);
  if (forcedRaw !== undefined) {
    const source = opts.name !== undefined ? 'backend' : 'DDPM_BACKEND';
    const name = parseName(forcedRaw, source);
    if (current?.chosen === name && tf.getBackend() === name) return current;
    const p = await trySet(name);
    if (!p.usable) throw new BackendError(`${source}=${name} cannot be used: ${p.why}`);
    current = { chosen: name, forcedBy: `${source}=${name}`, probes: [p], adapter: name === 'webgpu' ? webgpuAdapterInfo?.description : undefined };
    return current;
  }
  if (current && tf.getBackend() === current.chosen) return current;
  const probes: BackendProbe[] = [];
  for (const name of BACKENDS) {
    if (name === 'webgpu') {
      if (process.platform === 'linux' && gpuDeviceNodes().length === 0) {
        probes.push({
          name,
          usable: false,
          automatic: false,
          why: 'no GPU device node (/dev/dri/renderD*, /dev/nvidia*): only a software adapter could exist, which is never chosen automatically; DDPM_BACKEND=webgpu tries it',
        });
        continue;
      }
      const p = await probeWebgpu();
      if (!p.automatic) {
        probes.push(p);
        continue;
      }
    }
    const p = await trySet(name);
    probes.push(p);
    if (p.usable && p.automatic) {
      current = { chosen: name, probes, adapter: name === 'webgpu' ? webgpuAdapterInfo?.description : undefined };
      return current;
    }
  }
  throw new BackendError('no tfjs backend could be initialised, not even cpu');
}

/** Probe every backend without changing the current one more than needed; for `ddpm-spec backend`. */
export async function probeAll(): Promise<BackendProbe[]> {
  const before = tf.getBackend();
  const out: BackendProbe[] = [];
  out.push(await probeTensorflow());
  out.push(await probeWebgpu());
  for (const name of ['wasm', 'cpu'] as const) out.push(await trySet(name));
  if (before && isRegistered(before)) await setAndCheck(before);
  return out;
}

/** The backend in use (after {@link initBackend}). */
export function currentBackend(): BackendReport | null {
  return current;
}

export { tf };
