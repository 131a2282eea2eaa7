/**
 * The `ddpm-spec` command line. Each subcommand lives in its own file and registers itself here.
 *
 * @module
 */
import { Command, CommanderError } from 'commander';
import { BackendError } from '../backend.ts';
import { FormatError } from '../formats/errors.ts';
import { registerBackend } from './backend.ts';
import { registerBpd } from './bpd.ts';
import { registerCheck } from './check.ts';
import { registerSample } from './sample.ts';
import { registerTrain } from './train.ts';
import { UsageError, type ExitCode } from './common.ts';

export { UsageError };

/** Run the CLI on `argv` (as `process.argv`); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('ddpm-spec')
    .description('An executable specification of DDPM, a reference implementation on TensorFlow.js, and a conformance checker')
    .exitOverride()
    .showHelpAfterError();
  const code: ExitCode = { value: 0 };
  registerCheck(program, code);
  registerBackend(program, code);
  registerSample(program, code);
  registerTrain(program, code);
  registerBpd(program, code);
  try {
    await program.parseAsync(argv);
    return code.value;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof BackendError || e instanceof UsageError || e instanceof FormatError) {
      process.stderr.write(`ddpm-spec: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
