/**
 * `ddpm-spec train`: placeholder until its issue lands.
 *
 * @module
 */
import type { Command } from 'commander';
import { UsageError, type ExitCode } from './common.ts';

export function registerTrain(program: Command, _code: ExitCode): void {
  program
    .command('train')
    .description('train a DDPM (not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new UsageError('`ddpm-spec train` is not implemented yet');
    });
}
