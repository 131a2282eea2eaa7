/**
 * Errors raised while reading data files: they name the file and the field.
 *
 * @module
 */

/** A data file that does not have the expected form. `file` and `field` say where. */
export class FormatError extends Error {
  override name = 'FormatError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}: ${field === '' ? '' : `${field}: `}${problem}`);
  }
}

/**
 * A JSON.parse error's message without the echo of the input that Node appends (`"…" is not valid JSON`), which
 * would print raw bytes of a binary file; the position is kept.
 */
export function jsonErrorWithoutInput(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const pos = /at position (\d+)/.exec(m);
  const head = m.split(/, "|\n/)[0].replace(/'[\u0000-\u001f\u007f-\u009f]'/g, (q) => `'\\x${q.charCodeAt(1).toString(16).padStart(2, '0')}'`);
  return `${head.slice(0, 120)}${pos && !head.includes('position') ? ` at position ${pos[1]}` : ''}`;
}
