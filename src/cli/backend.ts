/**
 * `ddpm-spec backend`: which TensorFlow.js backend would be used, and why the others are not.
 *
 * @module
 */
import type { Command } from 'commander';
import { initBackend, probeAll, type BackendProbe } from '../backend.ts';
import type { ExitCode } from './common.ts';

export function registerBackend(program: Command, code: ExitCode): void {
  program
    .command('backend')
    .description('print the TensorFlow.js backend that would be used, the ones available, and why the others are not')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      code.value = await backendCommand(opts);
    });
}

export async function backendCommand(opts: { json?: boolean }): Promise<number> {
  const report = await initBackend();
  const probes: BackendProbe[] = await probeAll();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ chosen: report.chosen, forcedBy: report.forcedBy ?? null, adapter: report.adapter ?? null, backends: probes }, null, 2)}\n`);
    return 0;
  }
  const lines = [`backend: ${report.chosen}${report.forcedBy ? ` (forced by ${report.forcedBy})` : ' (chosen automatically)'}`, ''];
  for (const p of probes) {
    const mark = p.name === report.chosen ? '*' : p.usable ? (p.automatic ? '+' : '~') : '-';
    lines.push(`${mark} ${p.name.padEnd(10)} ${p.usable ? (p.automatic ? 'available' : 'usable if forced') : 'unavailable'}: ${p.why}`);
  }
  lines.push('', '* chosen   + available   ~ only when forced with DDPM_BACKEND   - unavailable');
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
