/**
 * Runs test files in path order, so that the tree reporter prints the derivation in its numbered order
 * (files are named after the sections of the derivation).
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export default class PathSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId));
  }
}
