/**
 * The `ddpm-spec` command line.
 *
 * @module
 */
import { Command, CommanderError } from 'commander';
import { BackendError } from '../backend.ts';
import { backendCommand } from './backend.ts';

/** A user-facing error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Run the CLI on `argv` (as `process.argv`); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('ddpm-spec')
    .description('An executable specification of DDPM, a reference implementation on TensorFlow.js, and a conformance checker')
    .exitOverride()
    .showHelpAfterError();
  let code = 0;
  program
    .command('backend')
    .description('print the TensorFlow.js backend that would be used, the ones available, and why the others are not')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      code = await backendCommand(opts);
    });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof BackendError || e instanceof UsageError) {
      process.stderr.write(`ddpm-spec: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
