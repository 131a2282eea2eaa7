/**
 * The tree reporter of `npm test`, printed in the order of the derivation whatever the number of workers.
 *
 * vitest's own tree reporter prints each test file when it finishes, so with two workers section 3.2 can come
 * before 3.1. This reporter collects every result and prints once, at the end of the run:
 *
 * - top-level `describe` blocks sorted by their section number (`1.2` < `1.10` < `2.0`), under a chapter heading,
 *   each headed by its derivation page (`docs/derivation/1-2-marginalisation.md`) when one exists, else by the
 *   test file;
 * - tests whose id is `ddpm.ops.*` (the same laws stated on the reference code's 0-based operations, in its
 *   names) gathered into their own section, 3.10 "the same laws in the code's vocabulary", after 3.9 (diffusers);
 * - the values a test recorded with `show` (properties/support/show.ts) beside its claim (`w₂ = 0.2727`);
 * - no durations, so that two runs print the same tree.
 *
 * Failures are marked in the tree and detailed afterwards by vitest's usual error summary.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DefaultReporter, type TestCase, type TestModule, type TestSuite } from 'vitest/node';

/** Chapter titles, by the first number of a section. */
export const CHAPTERS: Record<number, string> = {
  0: 'Foundations: numerics, formats, backends',
  1: 'Probability',
  2: 'Gaussians',
  3: 'The diffusion model',
  4: 'The reference implementation against the spec',
  5: 'Golden data',
  6: 'The UNet',
  7: 'Training',
  8: 'Conformance',
  9: 'Meta checks',
};

/** The section that collects the `ddpm.ops.*` laws. */
export const OPS_SECTION = '3.10';
export const OPS_TITLE = "3.10 The same laws in the code's vocabulary (0-based t, the reference code's names)";
const OPS_ID = /\[ddpm\.ops\.[^\]]+\]\s*$/;

/** The section number at the start of a describe title (`'3.10 Foo'` → `[3, 10]`), or undefined. */
export function sectionNumber(title: string): number[] | undefined {
  const m = /^(\d+(?:\.\d+)*)\s/.exec(title);
  return m ? m[1].split('.').map(Number) : undefined;
}

/** Compare two section numbers numerically, part by part; a missing number sorts last. */
export function compareSections(a: number[] | undefined, b: number[] | undefined): number {
  if (!a || !b) return (a ? 0 : 1) - (b ? 0 : 1);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** One line of the tree before colouring: indentation depth, state, text. */
export interface TreeLine {
  depth: number;
  state: 'pass' | 'fail' | 'skip' | 'suite' | 'heading';
  text: string;
}

interface Block {
  section: number[] | undefined;
  title: string;
  file: string;
  order: number;
  lines: TreeLine[];
}

/** Values shown beside a test's claim, recorded by {@link show} in the test's meta. */
function shownValues(test: TestCase): string[] {
  const v = (test.meta() as { shown?: unknown }).shown;
  return Array.isArray(v) ? v.map(String) : [];
}

function testLine(test: TestCase, depth: number): TreeLine {
  const r = test.result().state;
  const state = r === 'passed' ? 'pass' : r === 'failed' ? 'fail' : 'skip';
  const shown = shownValues(test);
  return { depth, state, text: test.name + (shown.length > 0 ? `   ⟶ ${shown.join(', ')}` : '') };
}

/**
 * Split a run's results into blocks (a top-level describe each, plus one for the ddpm.ops laws) and order them
 * by section. Pure: exported so that a property can check the order without running vitest inside vitest.
 */
export function derivationBlocks(modules: ReadonlyArray<TestModule>, root: string): Block[] {
  const blocks: Block[] = [];
  const ops: Block = { section: sectionNumber(OPS_TITLE), title: OPS_TITLE, file: 'src/conformance/ddpmLaws.ts', order: -1, lines: [] };
  const sorted = [...modules].sort((a, b) => a.moduleId.localeCompare(b.moduleId));
  let order = 0;
  for (const m of sorted) {
    const file = relative(root, m.moduleId);
    const loose: TreeLine[] = [];
    for (const child of m.children) {
      if (child.type === 'test') {
        loose.push(testLine(child, 1));
        continue;
      }
      const block: Block = { section: sectionNumber(child.name), title: child.name, file, order: order++, lines: [] };
      const visit = (suite: TestSuite, depth: number): void => {
        for (const c of suite.children) {
          if (c.type === 'suite') {
            block.lines.push({ depth, state: 'suite', text: c.name });
            visit(c, depth + 1);
          } else if (OPS_ID.test(c.name)) {
            const line = testLine(c, 1);
            ops.lines.push({ ...line, text: `${line.text}   (from ${block.title.split(' ')[0]})` });
          } else {
            block.lines.push(testLine(c, depth));
          }
        }
      };
      visit(child, 1);
      if (block.lines.length > 0) blocks.push(block);
    }
    if (loose.length > 0) blocks.push({ section: undefined, title: file, file, order: order++, lines: loose });
    if (m.state() === 'failed' && m.errors().length > 0) {
      blocks.push({ section: undefined, title: `${file} failed to load`, file, order: order++, lines: m.errors().map((e) => ({ depth: 1, state: 'fail', text: e.message })) });
    }
  }
  if (ops.lines.length > 0) blocks.push(ops);
  return blocks.sort((a, b) => compareSections(a.section, b.section) || a.order - b.order);
}

/** The derivation page of a section (`docs/derivation/1-2-*.md`), relative to the root, if there is one. */
export function derivationPage(section: number[] | undefined, root: string): string | undefined {
  if (!section || section.length < 2) return undefined;
  const dir = join(root, 'docs', 'derivation');
  if (!existsSync(dir)) return undefined;
  const prefix = `${section.join('-')}-`;
  const page = readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.md') && /^\d+-\d+-[a-z]/.test(f) && f.split('-').length > section.length);
  return page ? `docs/derivation/${page}` : undefined;
}

/** The whole tree as plain lines (no colour), in derivation order. */
export function derivationTree(modules: ReadonlyArray<TestModule>, root: string): TreeLine[] {
  const out: TreeLine[] = [];
  let chapter: number | undefined;
  let previous: string | undefined;
  for (const b of derivationBlocks(modules, root)) {
    const c = b.section?.[0];
    if (c !== chapter && c !== undefined) {
      chapter = c;
      out.push({ depth: 0, state: 'heading', text: `${c}. ${CHAPTERS[c] ?? ''}`.trim() });
    }
    const key = b.section?.join('.');
    if (key === undefined || key !== previous) {
      const page = derivationPage(b.section, root);
      out.push({ depth: 0, state: 'heading', text: `  ${page ? `§ ${page}` : `· ${b.file}`}` });
    }
    previous = key;
    out.push({ depth: 1, state: 'suite', text: b.title });
    out.push(...b.lines.map((l) => ({ ...l, depth: l.depth + 1 })));
  }
  return out;
}

const SYMBOL = { pass: '✓', fail: '×', skip: '↓', suite: '', heading: '' } as const;

/** The same tree as text, one line each. */
export function renderTree(lines: readonly TreeLine[], colour: (state: TreeLine['state'], s: string) => string = (_, s) => s): string {
  return lines
    .map((l) => {
      const pad = '  '.repeat(l.depth);
      const sym = SYMBOL[l.state];
      return pad + colour(l.state, sym ? `${sym} ${l.text}` : l.text);
    })
    .join('\n');
}

const ANSI = { pass: '\x1b[32m', fail: '\x1b[31m', skip: '\x1b[33m', suite: '\x1b[1m', heading: '\x1b[1;36m' } as const;

export default class DerivationReporter extends DefaultReporter {
  override verbose = true;
  override renderSucceed = true;

  /** Print nothing per file: files finish in any order. */
  override onTestModuleEnd(): void {}

  override onTestRunEnd(...args: Parameters<DefaultReporter['onTestRunEnd']>): void {
    const [modules] = args;
    const colour = process.stdout.isTTY || process.env.FORCE_COLOR ? (s: TreeLine['state'], t: string) => `${ANSI[s]}${t}\x1b[0m` : undefined;
    this.log(`\n${renderTree(derivationTree(modules, this.ctx.config.root), colour)}\n`);
    super.onTestRunEnd(...args);
  }
}
