/**
 * The `ddpm-spec` command line. Each subcommand lives in its own file and registers itself here; every failure
 * passes through one boundary (`boundary.ts`) that prints one line and returns an exit code from the table in
 * `common.ts`.
 *
 * @module
 */
import { Command } from 'commander';
import { registerBackend } from './backend.ts';
import { reportFailure } from './boundary.ts';
import { registerBpd } from './bpd.ts';
import { registerCheck } from './check.ts';
import { registerSample } from './sample.ts';
import { registerTrain } from './train.ts';
import { UsageError, type ExitCode } from './common.ts';

export { UsageError };

/** The subcommand `argv` names (its first word after the script that is a registered command), or ''. */
function commandOf(program: Command, argv: string[]): string {
  const names = new Set(program.commands.map((c) => c.name()));
  return argv.slice(2).find((a) => names.has(a)) ?? '';
}

function buildProgram(code: ExitCode): Command {
  const program = new Command();
  program
    .name('ddpm-spec')
    .description('An executable specification of DDPM, a reference implementation on TensorFlow.js, and a conformance checker')
    .option('--debug', 'print the full stack of an internal error instead of writing it to a file')
    .exitOverride()
    .showHelpAfterError();
  registerCheck(program, code);
  registerBackend(program, code);
  registerSample(program, code);
  registerTrain(program, code);
  registerBpd(program, code);
  return program;
}

/**
 * Run the CLI on `argv` (as `process.argv`); resolves to the exit code. It never rejects: every failure is
 * printed on stderr as one line (see `boundary.ts`).
 */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug') || process.env.DDPM_DEBUG === '1';
  const rest = argv.filter((a, i) => i < 2 || a !== '--debug');
  const code: ExitCode = { value: 0 };
  let command = '';
  try {
    const program = buildProgram(code);
    command = commandOf(program, rest);
    await program.parseAsync(rest);
    return code.value;
  } catch (e) {
    return reportFailure(e, command, argv, debug);
  }
}

/**
 * Run the CLI as a process: {@link main}, plus guards for failures that escape every promise (an exception in
 * a callback, an unhandled rejection), which go through the same boundary instead of Node's default handler
 * (that prints the source line of the throw, a whole minified bundle for tfjs's wasm glue). Resolves to the
 * exit code; the process exits at most `graceMs` after that even if a stray handle would keep it alive.
 */
export async function runCli(argv: string[], graceMs = 2000): Promise<number> {
  const debug = argv.includes('--debug') || process.env.DDPM_DEBUG === '1';
  const fatal = (e: unknown): void => {
    process.exit(reportFailure(e, commandOf(buildProgram({ value: 0 }), argv), argv, debug));
  };
  // prepend: these run before any handler a library (emscripten's glue) registers later
  process.prependListener('uncaughtException', fatal);
  process.prependListener('unhandledRejection', fatal);
  const code = await main(argv);
  setTimeout(() => process.exit(code), graceMs).unref();
  return code;
}
