/**
 * Runs test files in the order of the derivation, so that the tree reporter prints it in its numbered order:
 * foundation (numeric, formats, backend), probability, Gaussians, the diffusion model, the reference
 * implementation, golden replay, the UNet, training, conformance, meta checks. Within a folder, files run in
 * path order (they are numbered).
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export const FOLDER_ORDER = [
  'numeric', 'formats', 'backend', 'probability', 'gaussian', 'ddpm', 'reference', 'golden', 'unet', 'training', 'conformance', 'meta',
];

function rank(moduleId: string): [number, string] {
  const m = /properties\/([^/]+)\//.exec(moduleId);
  const i = m ? FOLDER_ORDER.indexOf(m[1]) : -1;
  return [i === -1 ? FOLDER_ORDER.length : i, moduleId];
}

export default class DerivationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => {
      const [ra, pa] = rank(a.moduleId);
      const [rb, pb] = rank(b.moduleId);
      return ra - rb || pa.localeCompare(pb);
    });
  }
}
