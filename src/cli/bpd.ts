/**
 * `ddpm-spec bpd`: placeholder until its issue lands.
 *
 * @module
 */
import type { Command } from 'commander';
import { UsageError, type ExitCode } from './common.ts';

export function registerBpd(program: Command, _code: ExitCode): void {
  program
    .command('bpd')
    .description('test bits/dim of a checkpoint (not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new UsageError('`ddpm-spec bpd` is not implemented yet');
    });
}
