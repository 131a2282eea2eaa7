// API pages: `npm run docs` writes docs/api/ (not committed). Maths in doc comments ($…$, $$…$$) is
// rendered server-side to MathML by @vscode/markdown-it-katex: no fonts, no CDN.
import { existsSync } from 'node:fs';
import katex from '@vscode/markdown-it-katex';

/** @type {Partial<import('typedoc').TypeDocOptions>} */
export default {
  entryPoints: ['src/index.ts', 'spec/index.ts', 'reference/index.ts'].filter((p) => existsSync(p)),
  out: 'docs/api',
  tsconfig: 'tsconfig.json',
  name: 'ddpm-spec',
  readme: 'docs/README.md',
  excludePrivate: true,
  disableSources: true,
  treatWarningsAsErrors: false,
  validation: { notExported: false, invalidLink: true },
  markdownItLoader(parser) {
    parser.use(katex.default ?? katex, { output: 'mathml', throwOnError: false });
  },
};
