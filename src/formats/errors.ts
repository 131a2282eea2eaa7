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
