import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../src/backend.ts';
import { MAX_LINE_BYTES, oneLine, renderFailure, reportFailure } from '../../src/cli/boundary.ts';
import { EXIT, SystemError, UsageError } from '../../src/cli/common.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.ts';

const CLI = join(import.meta.dirname, '../../bin/ddpm-spec.mjs');

/** Run the CLI; resolves with its exit code, stderr and wall time. Killed (and failed) after `limitMs`. */
function runCli(args: string[], limitMs = 60_000): Promise<{ code: number | null; err: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, err, ms: Date.now() - t0 });
    });
  });
}

/** The last line of stderr: the failure line, which must be short and printable. */
function failureLine(err: string): string {
  const lines = err.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  expect(Buffer.byteLength(last), last).toBeLessThan(2048);
  expect(err).not.toMatch(/\n\s+at /); // no stack
  return last;
}

const TINY = { model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 1, temb_dim: 4 } }, diffusion: { num_diffusion_timesteps: 10, beta_end: 0.5, beta_start: 0.01 }, checkpoint_every: 2, batch_size: 8 };

describe('7.11 The command line under faults: one line, a documented exit code, bounded time', () => {
  it('every failure is one printable line under 2 KB, whatever its message (control bytes escaped, long text cut)  [cli.boundary.oneLine]', () =>
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 6000 }), (s) => {
        const line = oneLine(s);
        expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
        expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
      }),
    ));

  it('failures map to the documented exit codes: bad input 2, system 3 (disk full, wasm out of memory), internal 4 with the stack in a report file  [cli.boundary.exitCodes]', () => {
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC', syscall: 'write' });
    expect(renderFailure(new UsageError('--steps is required'))).toEqual({ code: EXIT.badInput, line: '--steps is required' });
    expect(renderFailure(new FormatError('a.json', 'x.y', 'expected a number'))).toEqual({ code: 2, line: 'a.json: x.y: expected a number' });
    expect(renderFailure(new BackendError('no such backend')).code).toBe(2);
    expect(renderFailure(new SystemError('out/.lock', 'another run writes here')).code).toBe(EXIT.system);
    expect(renderFailure(full)).toEqual({ code: EXIT.system, line: 'write(): no space left on device (ENOSPC)' });
    expect(renderFailure(new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.')).code).toBe(EXIT.system);
    const lines: string[] = [];
    const huge = new TypeError(`x is not a function ${'var a=function(){};'.repeat(3000)}`);
    expect(reportFailure(huge, 'bpd', ['node', 'ddpm-spec', 'bpd'], false, { write: (s: string) => lines.push(s) })).toBe(EXIT.internal);
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(lines[0])).toBeLessThan(2048);
    const m = /^ddpm-spec bpd: internal error: TypeError: x is not a function .* \(full report in (\S+); rerun with --debug to print it\)\n$/.exec(lines[0]);
    expect(m, lines[0].slice(0, 300)).not.toBeNull();
    expect(readFileSync(m![1], 'utf8')).toContain('at ');
    rmSync(m![1]);
  });

  it('the listed abuses each print one clear line with their exit code, in bounded time: T = 1, --workers 9999, --out /proc, batch 10⁶, const β = 1, a NaN in the EMA, a dangling link  [cli.faults.oneLineEach]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-cli-faults-'));
    try {
      const cfg = (name: string, over: Record<string, unknown>): string => {
        const path = join(dir, name);
        writeFileSync(path, JSON.stringify({ ...TINY, ...over, diffusion: { ...TINY.diffusion, ...((over.diffusion as object) ?? {}) } }));
        return path;
      };
      const cases: Array<{ args: string[]; code: number; line: RegExp }> = [
        { args: ['train', '--data', 'moons', '--steps', '2', '--out', join(dir, 'a'), '--config', cfg('t1.json', { diffusion: { num_diffusion_timesteps: 1 } })], code: 2, line: /^ddpm-spec train: \S+t1\.json: diffusion\.num_diffusion_timesteps: Too small: expected number to be >=2$/ },
        { args: ['train', '--data', 'moons', '--steps', '2', '--out', join(dir, 'b'), '--workers', '9999'], code: 2, line: /^ddpm-spec train: --workers must be at most \d+, the cores of this machine/ },
        { args: ['train', '--data', 'moons', '--steps', '2', '--out', '/proc/ddpm-spec-x'], code: 2, line: /^ddpm-spec train: the output directory: \/proc\/ddpm-spec-x is on proc, a pseudo-filesystem/ },
        { args: ['train', '--data', 'moons', '--steps', '2', '--out', join(dir, 'c'), '--config', cfg('big.json', { batch_size: 1_000_000, model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 2048, layers: 3, temb_dim: 4 } } })], code: EXIT.system, line: /^ddpm-spec train: batch_size: 1000000 .* needs at least [\d.]+ GiB of activations/ },
        { args: ['train', '--data', 'moons', '--steps', '2', '--out', join(dir, 'd'), '--config', cfg('const.json', { diffusion: { beta_schedule: 'const', beta_end: 1 } })], code: 2, line: /^ddpm-spec train: \S+const\.json: diffusion\.beta_end: const schedule: β reaches 1 at t = 1 of T = 10/ },
      ];
      const results = await Promise.all(cases.map((c) => runCli(c.args)));
      results.forEach((r, i) => {
        expect(r.code, `${cases[i].args.join(' ')}\n${r.err}`).toBe(cases[i].code);
        expect(failureLine(r.err)).toMatch(cases[i].line);
        expect(r.ms).toBeLessThan(60_000);
      });
      expect(existsSync(join(dir, 'c', 'ckpt-00000002')), 'nothing was trained').toBe(false);

      // a NaN in the EMA of a checkpoint: bpd and resume refuse it, naming the tensor and the index
      const run = join(dir, 'run');
      const ok = await runCli(['train', '--data', 'moons', '--steps', '2', '--out', run, '--config', cfg('tiny.json', {})]);
      expect(ok.code, ok.err).toBe(0);
      const file = join(run, 'ckpt-00000002', 'train-state.safetensors');
      const st = readSafetensors(file);
      st.tensors.get('ema/in.bias')!.data[3] = Number.NaN;
      writeSafetensors(file, [...st.tensors].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data as Float32Array }]), st.metadata);
      const [bpd, resume] = await Promise.all([
        runCli(['bpd', '--checkpoint', run, '--data', 'fashion-mnist']),
        runCli(['train', '--data', 'moons', '--steps', '4', '--out', run, '--resume']),
      ]);
      for (const r of [bpd, resume]) {
        expect(r.code, r.err).toBe(2);
        expect(failureLine(r.err)).toMatch(/: \S+train-state\.safetensors: ema\/in\.bias: element 3 \(flat, row-major\) is NaN; a checkpoint must hold finite numbers only/);
      }

      // a dangling symbolic link as the golden folder
      symlinkSync(join(dir, 'nowhere'), join(dir, 'golden-link'));
      const check = await runCli(['check', '--golden', join(dir, 'golden-link'), '--no-laws']);
      expect(check.code, check.err).toBe(2);
      expect(failureLine(check.err)).toBe(`ddpm-spec check: --golden ${join(dir, 'golden-link')}: a symbolic link to ${join(dir, 'nowhere')}, which does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
