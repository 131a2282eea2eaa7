import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { connectStdio, ImplError } from '../../src/conformance/impl/stdio.ts';
import type { Tensor } from '../../src/conformance/ops.ts';
import { rejection } from './support.ts';

const fixture = fileURLToPath(new URL('./fixtures/misbehaving-impl.mjs', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/ddpm-spec.mjs', import.meta.url));
const x: Tensor = { shape: [2], data: Float64Array.from([0.25, -1]) };

/** The fixture's command line in `mode`, writing its pids (and its grandchild's) to `pidFile`. */
const impl = (mode: string, pidFile = ''): string => [process.execPath, fixture, mode, pidFile].map((a) => JSON.stringify(a)).join(' ');

/** A fresh file name for the fixture's pids, in a fresh folder. */
function pidFileIn(): { pidFile: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ddpm-child-'));
  return { pidFile: join(dir, 'pids'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const readPids = (f: string): number[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number) : []);

/** Whether `pid` is a process that still runs (a zombie waiting for its parent's wait() does not run). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim().startsWith('Z');
  } catch {
    return false; // ps lists nothing: gone between the two calls
  }
}

/** The processes of group `pgid` that still run, as `ps` lists them. */
function groupMembers(pgid: number): string[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => {
    const [, g, stat] = l.trim().split(/\s+/);
    return Number(g) === pgid && !stat.startsWith('Z');
  });
}

/** Wait until `f` holds or `s` seconds pass. */
async function until(f: () => boolean, s: number): Promise<boolean> {
  const end = Date.now() + s * 1000;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Run the `ddpm-spec` command as a process; resolves with its exit code or signal, its output and its wall time. */
function runCli(args: string[], opts: { onStart?: (pid: number) => void } = {}): Promise<{ code: number | null; signal: string | null; out: string; seconds: number }> {
  const t0 = Date.now();
  const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  opts.onStart?.(p.pid!);
  return new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal, out, seconds: (Date.now() - t0) / 1000 })));
}


describe('8.5 The child process cannot hang the checker: its whole process group is stopped, its answers are bounded', () => {
  it('a child that ignores SIGTERM is stopped with SIGKILL after the grace period, with every process of its group  [conformance.stdio.sigtermIgnoredStillStopped]', async () => {
    const { pidFile, cleanup } = pidFileIn();
    try {
      const t0 = Date.now();
      const ops = await connectStdio(impl('ignore-term', pidFile), { timeoutS: 0.5, helloTimeoutS: 60, graceS: 1 });
      const e = await rejection(ops.approx_standard_normal_cdf!(x));
      await ops.close();
      const seconds = (Date.now() - t0) / 1000;
      expect(e).toBeInstanceOf(ImplError);
      expect(e.message).toMatch(/no answer within 0\.5 s/);
      // timeout 0.5 s + grace 1 s + up to 1 s after SIGKILL, plus start-up on a busy machine (the handshake has its
      // own 60 s: at load 8 a node child took more than 0.5 s to answer hello, which is not what this checks)
      expect(seconds, `close() returned after ${seconds} s`).toBeLessThan(10);
      for (const pid of readPids(pidFile)) expect(running(pid), `process ${pid} of the implementation still runs`).toBe(false);
      expect(groupMembers(ops.pgid!)).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('a child that exits while a grandchild holds its stdout fails the call and its grandchild is stopped too  [conformance.stdio.grandchildStopped]', async () => {
    const { pidFile, cleanup } = pidFileIn();
    try {
      const ops = await connectStdio(impl('grandchild', pidFile), { timeoutS: 30, graceS: 1 });
      const t0 = Date.now();
      const e = await rejection(ops.approx_standard_normal_cdf!(x));
      const seconds = (Date.now() - t0) / 1000;
      await ops.close();
      expect(e.message).toMatch(/^approx_standard_normal_cdf \(request 1\): the implementation exited with code 0, but a process it started still holds its stdout; its process group was stopped/);
      expect(seconds, 'the call fails long before its 30 s timeout').toBeLessThan(10);
      const pids = readPids(pidFile);
      expect(pids.length, 'the fixture and its grandchild noted their pids').toBe(2);
      for (const pid of pids) expect(running(pid), `process ${pid} of the implementation still runs`).toBe(false);
      expect(groupMembers(ops.pgid!)).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('the handshake honours the operation timeout when no separate one is given  [conformance.stdio.helloHonoursTimeout]', async () => {
    const t0 = Date.now();
    const e = await rejection(connectStdio(impl('silent-hello'), { timeoutS: 0.5, graceS: 1 }));
    expect(e.message).toMatch(/did not complete the handshake: hello \(request 0\): no answer within 0\.5 s/);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  /** The one-line error the first call to an implementation in `mode` fails with. */
  async function firstCallError(mode: string, maxLineBytes?: number): Promise<Error> {
    const ops = await connectStdio(impl(mode), { timeoutS: 30, maxLineBytes, graceS: 1 });
    try {
      return await rejection(ops.approx_standard_normal_cdf!(x));
    } finally {
      await ops.close();
    }
  }

  it('an answer line longer than the cap is refused unread with a one-line error  [conformance.stdio.lineCapRefused]', async () => {
    const e = await firstCallError('huge-line', 1024 * 1024);
    expect(e).toBeInstanceOf(ImplError);
    expect(e.message).toBe('approx_standard_normal_cdf (request 1): line 2 of its stdout is longer than 1 MiB, the most one answer may take (MAX_LINE_BYTES); it was refused unread');
  });

  it('an answer nested deeper than 3 levels of objects around a tensor of rank ≤ 8 is refused unparsed with a one-line error  [conformance.stdio.depthCapRefused]', async () => {
    const e = await firstCallError('deep');
    expect(e).toBeInstanceOf(ImplError);
    expect(e.message).toBe('approx_standard_normal_cdf (request 1): line 2 of its stdout is nested more than 11 levels deep: a message holds at most 3 levels of objects around tensors of rank ≤ 8; it was refused unparsed');
  });

  it('`check --impl` ends within its timeout plus the grace period, leaving no process, for a child that ignores SIGTERM or leaves a grandchild on stdout  [conformance.check.childCannotHang]', async () => {
    for (const mode of ['ignore-term', 'grandchild']) {
      const { pidFile, cleanup } = pidFileIn();
      try {
        const r = await runCli(['check', '--impl', impl(mode, pidFile), '--no-golden', '--timeout', '2', '--failures']);
        expect(r.code, `${mode}: exit code (output: ${r.out.slice(-400)})`).toBe(1);
        // start-up (tsx, a few seconds here) + at most one 2 s timeout + 3 s for stdin to close + 2 s grace + 1 s
        expect(r.seconds, `${mode}: check ran ${r.seconds} s`).toBeLessThan(40);
        const pids = readPids(pidFile);
        expect(pids.length).toBeGreaterThanOrEqual(1);
        for (const pid of pids) expect(await until(() => !running(pid), 1), `${mode}: process ${pid} still runs after check ended`).toBe(true);
      } finally {
        cleanup();
      }
    }
  });

  it('Ctrl-C (SIGINT) of `check` stops a busy child that ignores SIGTERM, and check dies of the signal  [conformance.check.interruptStopsChild]', async () => {
    const { pidFile, cleanup } = pidFileIn();
    try {
      let cliPid = 0;
      const done = runCli(['check', '--impl', impl('ignore-term', pidFile), '--no-golden', '--timeout', '600'], { onStart: (p) => (cliPid = p) });
      // The child is up (its pid is noted) and has answered the handshake once the laws have sent it a request.
      expect(await until(() => readPids(pidFile).length > 0, 60), 'the implementation started').toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(cliPid, 'SIGINT');
      const t0 = Date.now();
      const r = await done;
      expect(r.signal, `check ended with code ${r.code}, signal ${r.signal}: ${r.out.slice(-300)}`).toBe('SIGINT');
      expect((Date.now() - t0) / 1000, 'check ended within the 2 s grace period and a second').toBeLessThan(10);
      for (const pid of readPids(pidFile)) expect(await until(() => !running(pid), 1), `process ${pid} still runs after Ctrl-C`).toBe(true);
    } finally {
      cleanup();
    }
  });

  it('`--json FILE` is checked before the run: a missing folder, a pseudo-filesystem or a folder as FILE is one line and exit 2  [conformance.check.jsonDestinationChecked]', async () => {
    const { pidFile, cleanup } = pidFileIn();
    try {
      const cases: [string, RegExp][] = [
        ['/nonexistent-folder-ddpm/report.json', /^ddpm-spec check: --json \/nonexistent-folder-ddpm\/report\.json: the folder \/nonexistent-folder-ddpm does not exist\n$/],
        ['/proc/report.json', /^ddpm-spec check: --json \/proc\/report\.json: \/proc is on a pseudo-filesystem of the kernel, where the report cannot be kept; choose a folder on a disk\n$/],
        [tmpdir(), /^ddpm-spec check: --json .*: exists and is not a regular file\n$/],
      ];
      for (const [json, expected] of cases) {
        let err = '';
        const we = process.stderr.write.bind(process.stderr);
        process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
        let code: number;
        try {
          // The implementation would note its pid if it were started: it must not be.
          code = await main(['node', 'ddpm-spec', 'check', '--impl', impl('ok', pidFile), '--no-golden', '--json', json]);
        } finally {
          process.stderr.write = we;
        }
        expect(code, json).toBe(2);
        expect(err).toMatch(expected);
        expect(readPids(pidFile), 'nothing was started').toEqual([]);
      }
    } finally {
      cleanup();
    }
  });
});
