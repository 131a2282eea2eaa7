/**
 * `ddpm-spec sample`: placeholder until its issue lands.
 *
 * @module
 */
import type { Command } from 'commander';
import { UsageError, type ExitCode } from './common.ts';

export function registerSample(program: Command, _code: ExitCode): void {
  program
    .command('sample')
    .description('sample images from a checkpoint (not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new UsageError('`ddpm-spec sample` is not implemented yet');
    });
}
