/**
 * `ddpm-spec check`: placeholder until its issue lands.
 *
 * @module
 */
import type { Command } from 'commander';
import { UsageError, type ExitCode } from './common.ts';

export function registerCheck(program: Command, _code: ExitCode): void {
  program
    .command('check')
    .description('validate an implementation against the spec and the golden data (not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new UsageError('`ddpm-spec check` is not implemented yet');
    });
}
