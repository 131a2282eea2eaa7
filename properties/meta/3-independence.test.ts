/**
 * The reference implementation re-implements the maths instead of importing it, so that its agreement with the
 * spec is evidence (two independent derivations agree), not a tautology (one derivation agrees with itself).
 * This checks the convention statically: no module under `reference/` imports anything under `spec/`, by a
 * static import, an `export … from`, a dynamic `import()` or a `require()`.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Every module specifier a source file names, with its line (1-based). */
export function moduleSpecifiers(file: string, text: string): { spec: string; line: number }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { spec: string; line: number }[] = [];
  const add = (e: ts.Expression | undefined): void => {
    if (e && ts.isStringLiteralLike(e)) out.push({ spec: e.text, line: sf.getLineAndCharacterOfPosition(e.getStart()).line + 1 });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) add(n.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) add(n.moduleReference.expression);
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) add(n.arguments[0]);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) add(n.argument.literal as ts.Expression);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The imports of files under `from` that resolve into the folder `into` (both relative to the root). */
export function importsInto(root: string, from: string, into: string): string[] {
  const dir = join(root, from);
  if (!existsSync(dir)) return [];
  const target = join(root, into) + sep;
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(c|m)?[jt]sx?$/.test(f) && !f.split(/[\\/]/).includes('node_modules'));
  const bad: string[] = [];
  for (const f of files) {
    const file = join(dir, f);
    for (const { spec, line } of moduleSpecifiers(file, readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.') && !spec.startsWith('/')) continue;
      const resolved = resolve(dirname(file), spec);
      if (resolved + sep === target || resolved.startsWith(target)) bad.push(`${relative(root, file)}:${line} imports '${spec}'`);
    }
  }
  return bad.sort();
}

describe('9.3 The reference is independent of the spec', () => {
  it('no module under reference/ imports anything under spec/ (static, re-export, dynamic or require)  [meta.independence.referenceNeverImportsSpec]', () => {
    const bad = importsInto(ROOT, 'reference', 'spec');
    expect(bad, `reference/ must re-implement the maths, not import it from spec/:\n${bad.join('\n')}`).toEqual([]);
  });

  it('the check sees every form of import (it finds a planted one of each kind)  [meta.independence.checkFindsImports]', () => {
    const text = [
      "import { a } from '../spec/x.ts';",
      "export * from '../../spec/ddpm/index.ts';",
      "const m = await import('../spec/y.ts');",
      "const r = require('../spec');",
      "type T = import('../spec/z.ts').Z;",
      "import ok from './local.ts';",
    ].join('\n');
    expect(moduleSpecifiers('reference/f.ts', text).map((s) => s.spec)).toEqual(['../spec/x.ts', '../../spec/ddpm/index.ts', '../spec/y.ts', '../spec', '../spec/z.ts', './local.ts']);
  });
});
