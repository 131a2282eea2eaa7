/**
 * The derivation is linked to its checks: every property id that a derivation page or a spec doc comment
 * cites is the id of a test, every export of `spec/` names at least one property that checks it, and every
 * display equation of a numbered derivation page names its spec symbol and its property id.
 *
 * The mechanism (documented for authors in docs/derivation/README.md):
 *
 * - A property id is the bracketed suffix of an `it`/`test` title in `properties/**\/*.test.ts`:
 *   `it('is ≥ 0  [probability.kl.nonneg]', …)`. Ids are harvested statically with the TypeScript parser.
 * - A spec export cites its checks in its doc comment with `@see property \`area.concept.law\``.
 *   Values (functions, constants, schemas, classes) need at least one such tag. A type or interface is covered
 *   by its own tag, or by a value of the same name in the same file (schema + `z.infer`), or by a `{@link X}`
 *   in its doc comment to an export X that is covered (the function that uses it).
 * - A derivation page cites ids as `[area.concept.law]` and spec symbols as links
 *   ``[`symbol`](../../spec/path.ts)`` to the file that defines them.
 *
 * A file with no exports (a placeholder such as `export {}`) contributes nothing; re-exports (`export * from`)
 * are checked at their source.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '..', '..');
const ID = /^[a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,}$/;
const TITLE_ID = /\[([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,})\]\s*$/;
const SEE_PROPERTY = /@see\s+property\s+`([^`]+)`/g;
const LINK = /\{@link\s+([A-Za-z_$][\w$]*)/g;

function walk(dir: string, keep: (f: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.split(/[\\/]/).includes('node_modules'))
    .map((f) => join(dir, f))
    .filter(keep)
    .sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

// ---------------------------------------------------------------------------------------------------------------
// Property ids from test titles

/** The identifier at the root of a callee chain: `it`, `it.each(…)`, `test.skip`, `describe.concurrent` … */
function rootName(e: ts.Expression): string | undefined {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return rootName(e.expression);
  if (ts.isCallExpression(e)) return rootName(e.expression);
  return undefined;
}

/** The literal text of a string, or of a template with its substitutions shown as `${…}`. */
function literalText(e: ts.Expression | undefined): string | undefined {
  if (!e) return undefined;
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
  if (ts.isTemplateExpression(e)) return e.head.text + e.templateSpans.map((s) => '${…}' + s.literal.text).join('');
  if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const l = literalText(e.left);
    const r = literalText(e.right);
    return l !== undefined && r !== undefined ? l + r : undefined;
  }
  return undefined;
}

interface TestId {
  id: string;
  file: string;
}

function harvestIds(): TestId[] {
  const out: TestId[] = [];
  for (const file of walk(join(ROOT, 'properties'), (f) => f.endsWith('.test.ts'))) {
    const sf = parse(file);
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) {
        const root = rootName(n.expression);
        if (root === 'it' || root === 'test') {
          const title = literalText(n.arguments[0]);
          const m = title === undefined ? null : TITLE_ID.exec(title.trim());
          if (m) out.push({ id: m[1], file: relative(ROOT, file) });
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Spec exports and their doc comments

interface SpecExport {
  name: string;
  file: string;
  isType: boolean;
  doc: string;
}

function jsDocOf(sf: ts.SourceFile, node: ts.Node): string {
  const text = sf.getFullText();
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  return ranges
    .map((r) => text.slice(r.pos, r.end))
    .filter((c) => c.startsWith('/**'))
    .join('\n');
}

function hasExport(node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

const exportCache = new Map<string, SpecExport[]>();

/** The exports defined in a file (re-exports from other modules are skipped: they are checked at their source). */
function specExports(file: string): SpecExport[] {
  const hit = exportCache.get(file);
  if (hit) return hit;
  const out = specExportsUncached(file);
  exportCache.set(file, out);
  return out;
}

function specExportsUncached(file: string): SpecExport[] {
  const sf = parse(file);
  const byName = new Map<string, SpecExport>();
  const add = (name: string, isType: boolean, doc: string) => {
    const prev = byName.get(name);
    if (prev) {
      prev.doc += `\n${doc}`;
      prev.isType &&= isType;
    } else byName.set(name, { name, file: relative(ROOT, file), isType, doc });
  };
  const locals = new Map<string, { isType: boolean; doc: string }>();
  for (const st of sf.statements) {
    const doc = jsDocOf(sf, st);
    const named = (n: ts.Node & { name?: ts.Node }) => (n.name && ts.isIdentifier(n.name) ? n.name.text : undefined);
    let entries: { name: string; isType: boolean }[] = [];
    if (ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isEnumDeclaration(st)) {
      const n = named(st);
      if (n) entries = [{ name: n, isType: false }];
    } else if (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) {
      entries = [{ name: st.name.text, isType: true }];
    } else if (ts.isVariableStatement(st)) {
      entries = st.declarationList.declarations.filter((d) => ts.isIdentifier(d.name)).map((d) => ({ name: (d.name as ts.Identifier).text, isType: false }));
    } else if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) {
        const local = locals.get((el.propertyName ?? el.name).text);
        add(el.name.text, local?.isType ?? st.isTypeOnly, local?.doc ?? '');
      }
      continue;
    }
    for (const e of entries) {
      if (hasExport(st)) add(e.name, e.isType, doc);
      else locals.set(e.name, { isType: e.isType, doc });
    }
  }
  return [...byName.values()];
}

function citedIds(doc: string): string[] {
  return [...doc.matchAll(SEE_PROPERTY)].map((m) => m[1]);
}

// ---------------------------------------------------------------------------------------------------------------
// Derivation pages

const DOCS = join(ROOT, 'docs', 'derivation');

function pages(): string[] {
  return walk(DOCS, (f) => f.endsWith('.md'));
}

/** A page's text without its fenced code blocks (examples of the format are not citations). */
function pageText(p: string): string {
  return readFileSync(p, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
}

/** `[area.concept.law]` citations (not link texts, which are followed by `(`). */
function pageIds(md: string): string[] {
  return [...md.matchAll(/\[([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,})\](?!\()/g)].map((m) => m[1]);
}

/** ``[`symbol`](path)`` links to spec files. */
function pageSymbols(md: string): { symbol: string; target: string }[] {
  return [...md.matchAll(/\[`([A-Za-z_$][\w$]*)`\]\(([^)#\s]+\.ts)(?:#[^)]*)?\)/g)].map((m) => ({ symbol: m[1], target: m[2] }));
}

// ---------------------------------------------------------------------------------------------------------------

const testIds = harvestIds();
const known = new Set(testIds.map((t) => t.id));
const exportsBySpecFile = walk(join(ROOT, 'spec'), (f) => f.endsWith('.ts')).map((f) => ({ file: f, exports: specExports(f) }));
const allExports = exportsBySpecFile.flatMap((x) => x.exports);

describe('9.2 The derivation is linked to its checks', () => {
  it('harvests property ids from the test titles, and they are well formed  [meta.derivation.idsHarvested]', () => {
    expect(testIds.length, 'no property ids found: is the harvester broken?').toBeGreaterThan(20);
    const bad = testIds.filter((t) => !ID.test(t.id));
    expect(bad, 'ids must be area.concept.law').toEqual([]);
  });

  it('every property id is the title suffix of exactly one test  [meta.derivation.idsUnique]', () => {
    const files = new Map<string, string[]>();
    for (const t of testIds) files.set(t.id, [...(files.get(t.id) ?? []), t.file]);
    const dups = [...files].filter(([, fs]) => fs.length > 1).map(([id, fs]) => `${id} (in ${fs.join(', ')})`);
    expect(dups, `duplicate property ids:\n${dups.join('\n')}`).toEqual([]);
  });

  it('every id cited by a spec doc comment (@see property) is the id of a test  [meta.derivation.specCitesExistingIds]', () => {
    const missing = allExports.flatMap((e) => citedIds(e.doc).filter((id) => !known.has(id)).map((id) => `${e.file}: ${e.name} cites ${id}`));
    expect(missing, `spec doc comments cite ids that no test has:\n${missing.join('\n')}`).toEqual([]);
  });

  it('every export of spec/ names the property that checks it  [meta.derivation.specExportsCovered]', () => {
    const covered = new Set(allExports.filter((e) => citedIds(e.doc).length > 0).map((e) => e.name));
    const sameFileValue = (e: SpecExport) => allExports.some((v) => v.file === e.file && v.name === e.name && !v.isType && covered.has(v.name));
    // A type linked to a covered export is covered too (iterate to a fixed point: links may chain).
    let changed = true;
    while (changed) {
      changed = false;
      for (const e of allExports) {
        if (covered.has(e.name)) continue;
        const linked = [...e.doc.matchAll(LINK)].some((m) => covered.has(m[1]));
        if ((e.isType && sameFileValue(e)) || (e.isType && linked)) {
          covered.add(e.name);
          changed = true;
        }
      }
    }
    const uncovered = allExports.filter((e) => !covered.has(e.name)).map((e) => `${e.file}: ${e.isType ? 'type ' : ''}${e.name}`);
    expect(
      uncovered,
      `spec exports without a property (add "@see property \`area.concept.law\`" to the doc comment; a type may instead link {@link fn} to the function that uses it):\n${uncovered.join('\n')}`,
    ).toEqual([]);
  });

  it('every id cited by a derivation page is the id of a test  [meta.derivation.pagesCiteExistingIds]', () => {
    const missing = pages().flatMap((p) => pageIds(pageText(p)).filter((id) => !known.has(id)).map((id) => `${relative(ROOT, p)}: ${id}`));
    expect(missing, `derivation pages cite ids that no test has:\n${missing.join('\n')}`).toEqual([]);
  });

  it('every spec symbol linked from a derivation page is exported by the file it links to  [meta.derivation.pagesLinkExistingSymbols]', () => {
    const bad: string[] = [];
    for (const p of pages()) {
      for (const { symbol, target } of pageSymbols(pageText(p))) {
        const file = resolve(dirname(p), target);
        if (!existsSync(file)) bad.push(`${relative(ROOT, p)}: ${symbol} links to ${target}, which does not exist`);
        else if (!specExports(file).some((e) => e.name === symbol)) bad.push(`${relative(ROOT, p)}: ${target} does not export ${symbol}`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it('every display equation of a numbered page names its spec symbol and its property id  [meta.derivation.equationsLinked]', () => {
    const bad: string[] = [];
    for (const p of pages().filter((f) => /^\d+-/.test(relative(DOCS, f)))) {
      const md = pageText(p);
      // Split into equation blocks: each $$…$$ and the text after it up to the next equation or heading.
      const re = /\$\$([\s\S]*?)\$\$([\s\S]*?)(?=\$\$|\n#|$)/g;
      for (const m of md.matchAll(re)) {
        const line = md.slice(0, m.index).split('\n').length;
        const after = m[2];
        if (pageIds(after).length === 0) bad.push(`${relative(ROOT, p)}:${line}: equation without a property id [area.concept.law] after it`);
        if (pageSymbols(after).length === 0) bad.push(`${relative(ROOT, p)}:${line}: equation without a spec symbol link [\`symbol\`](../../spec/…) after it`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it('a section number belongs to one file, or to files of one folder under one derivation page  [meta.derivation.sectionsDistinct]', () => {
    const owners = new Map<string, Set<string>>();
    for (const file of walk(join(ROOT, 'properties'), (f) => f.endsWith('.test.ts'))) {
      for (const st of parse(file).statements) {
        if (!ts.isExpressionStatement(st) || !ts.isCallExpression(st.expression) || rootName(st.expression.expression) !== 'describe') continue;
        const n = /^(\d+(?:\.\d+)*)\s/.exec(literalText(st.expression.arguments[0]) ?? '')?.[1];
        if (n) owners.set(n, (owners.get(n) ?? new Set()).add(relative(ROOT, file)));
      }
    }
    const shared = [...owners].filter(([n, files]) => {
      const folders = new Set([...files].map((f) => dirname(f)));
      const page = pages().some((p) => relative(DOCS, p).startsWith(`${n.replace(/\./g, '-')}-`));
      return files.size > 1 && (folders.size > 1 || !page);
    });
    expect(shared.map(([n, f]) => `${n}: ${[...f].join(', ')}`), 'section numbers printed twice by different suites').toEqual([]);
  });

  it('the derivation index links every numbered page  [meta.derivation.indexComplete]', () => {
    const index = join(DOCS, 'README.md');
    expect(existsSync(index), 'docs/derivation/README.md is missing').toBe(true);
    const text = readFileSync(index, 'utf8');
    const missing = pages()
      .map((p) => relative(DOCS, p))
      .filter((p) => /^\d+-/.test(p) && !text.includes(`](${p})`) && !text.includes(`](./${p})`));
    expect(missing, `pages not linked from docs/derivation/README.md: ${missing.join(', ')}`).toEqual([]);
  });
});
