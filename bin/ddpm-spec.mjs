#!/usr/bin/env node
// Entry point of the `ddpm-spec` command: registers the TypeScript loader, then runs the CLI (which prints every
// failure as one line; exit codes in the README).
import { register } from 'tsx/esm/api';

register();
try {
  const { runCli } = await import('../src/cli/main.ts');
  process.exitCode = await runCli(process.argv);
} catch (e) {
  // only a broken installation gets here (the CLI's own module failed to load)
  process.stderr.write(`ddpm-spec: cannot start: ${String(e instanceof Error ? e.message : e).split('\n')[0].slice(0, 500)}\n`);
  process.exitCode = 4;
}
