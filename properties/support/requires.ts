/**
 * Tests that need something outside npm: Debian's Python with numpy or torch, the Fashion-MNIST data package.
 * On a machine without it such a test is skipped, and the tree shows why on the test's own line
 * (`[needs numpy for /usr/bin/python3: apt-get install python3-numpy]`); the count reporter repeats each reason
 * once at the end. Under `CI=true` the same test fails with that line instead, because `.ci/run` installs all of
 * them and a missing one there is a broken set-up, not a choice.
 *
 * ```ts
 * const numpy = requirePython(['numpy']);
 * it('…  [area.concept.law]', async (ctx) => { need(ctx, numpy); … });
 * ```
 *
 * `DDPM_PYTHON` names the interpreter (default `/usr/bin/python3`, Debian's, the one `apt-get install python3-…`
 * installs into; the `python3` first on PATH may be another one), and `DDPM_FASHION_MNIST_DIR` the data folder
 * (default Debian's); pointing either elsewhere is how to try the suite as a fresh machine sees it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_DIR } from '../../src/data/fashionMnist.ts';

/** Whether something a test needs is present, and if not, what is missing and how to install it (one line). */
export interface Requirement {
  ok: boolean;
  /** `needs <what>: <install command>`; empty when present. */
  missing: string;
}

/** The Python interpreter the tests run (`DDPM_PYTHON`, default Debian's `/usr/bin/python3`). */
export const PYTHON = process.env.DDPM_PYTHON?.trim() || '/usr/bin/python3';

/** The folder the tests read Fashion-MNIST from (`DDPM_FASHION_MNIST_DIR`, default Debian's). */
export const FASHION_MNIST = process.env.DDPM_FASHION_MNIST_DIR?.trim() || FASHION_MNIST_DIR;

/** Debian's package for a Python module. */
const DEBIAN_PACKAGE: Record<string, string> = { numpy: 'python3-numpy', torch: 'python3-torch' };

const cache = new Map<string, Requirement>();

/** A Python interpreter (default {@link PYTHON}) with the given modules importable (looked up once per test file). */
export function requirePython(modules: readonly string[], python: string = PYTHON): Requirement {
  const key = `${python}:${modules.join(',')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const packages = modules.map((m) => DEBIAN_PACKAGE[m] ?? `python3-${m}`);
  // find_spec locates a module without importing it (torch takes seconds to import).
  const probe = spawnSync(python, ['-c', 'import importlib.util, sys; print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))', ...modules], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  let r: Requirement;
  if (probe.error !== undefined || probe.status !== 0) {
    const why = probe.error !== undefined ? (probe.error as NodeJS.ErrnoException).code ?? probe.error.message : `exit code ${probe.status}`;
    r = { ok: false, missing: `needs Python 3 at ${python} (${why}) with ${modules.join(', ')}: apt-get install python3 ${packages.join(' ')}` };
  } else {
    const absent = probe.stdout.trim().split(/\s+/).filter((m) => m !== '');
    r =
      absent.length === 0
        ? { ok: true, missing: '' }
        : { ok: false, missing: `needs ${absent.join(', ')} for ${python}: apt-get install ${absent.map((m) => DEBIAN_PACKAGE[m] ?? `python3-${m}`).join(' ')}` };
  }
  cache.set(key, r);
  return r;
}

/** The four Fashion-MNIST files of Debian's `dataset-fashion-mnist` in `dir`. */
export function requireFashionMnist(dir: string = FASHION_MNIST): Requirement {
  const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
  const absent = files.filter((f) => !existsSync(join(dir, f)));
  return absent.length === 0
    ? { ok: true, missing: '' }
    : { ok: false, missing: `needs Fashion-MNIST in ${dir} (${absent.length === files.length ? 'no files' : `missing ${absent.join(', ')}`}): apt-get install dataset-fashion-mnist` };
}

/** Whether the run counts as CI, where every requirement must be met (`CI` set to anything but `false`/`0`). */
export function inCi(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/**
 * Call first in a test that needs `r`: returns when it is met; otherwise skips the test with the one-line reason,
 * or, under CI, fails it with that line.
 */
export function need(ctx: { skip: (note?: string) => never }, r: Requirement, env: Record<string, string | undefined> = process.env): void {
  if (r.ok) return;
  if (inCi(env)) throw new Error(`${r.missing} (CI=true: .ci/run installs it, so a missing one fails instead of skipping)`);
  ctx.skip(r.missing);
}

/** Commands on PATH (looked up once each), with the Debian packages that provide them. */
export function requireCommands(commands: Readonly<Record<string, string>>): Requirement {
  const absent = Object.keys(commands).filter((c) => {
    const key = `cmd:${c}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      const probe = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8', timeout: 10_000 });
      hit = { ok: probe.status === 0, missing: '' };
      cache.set(key, hit);
    }
    return !hit.ok;
  });
  if (absent.length === 0) return { ok: true, missing: '' };
  const packages = [...new Set(absent.map((c) => commands[c]))];
  return { ok: false, missing: `needs ${absent.join(', ')}: apt-get install ${packages.join(' ')}` };
}
