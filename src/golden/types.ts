/**
 * The golden replay engine's vocabulary: a golden file becomes cases; a case calls one operation of a
 * {@link DiffusionOps} implementation and checks named outputs, each with its tolerance and the reason for it;
 * replaying gives one row per checked quantity.
 *
 * @module
 */
import type { DiffusionArgs, DiffusionOps, OpName, Precision, Tensor } from '../conformance/ops.ts';
import type { Tolerance } from '../numeric/tolerance.ts';

/** The per-element part of a tolerance that depends on the data (an error budget), replacing `atol`. */
export interface ElementAtol {
  /** atol for each element (same length as the expected data). */
  values: Float64Array;
  /** The formula, for reports: `5e-7·(|a·x|+|b·y|) + 1e-6`. */
  formula: string;
  /** Elements the bound cannot cover (saturated), replacing the check's static mask. */
  mask?: Mask;
}

/** Elements excluded from a comparison, and why. */
export interface Mask {
  /** 1 = compared, 0 = excluded (same length as the expected data). */
  keep: Uint8Array;
  reason: string;
}

/** One checked quantity of a case. */
export interface Check {
  /** The output name the case's `run` returns (e.g. `mean`, `grads.loss.W`). */
  quantity: string;
  /** What the reference code produced. */
  expected: Tensor;
  /** rtol/atol and the reason (from the golden README). */
  tol: Tolerance;
  /**
   * A data-dependent atol per element, replacing `tol.atol`; a function when it needs the implementation
   * (e.g. buffers for an error budget, when the folder does not record them).
   */
  elementAtol?: ElementAtol | ((impl: DiffusionOps, ctx: ReplayContext) => Promise<ElementAtol>);
  /** The arithmetic the implementation declared (set by the engine from {@link ReplayContext}); chooses the tolerance table. */
  precision?: Precision;
  mask?: Mask;
  /** Compare `Math.fround(actual)` (a float32 buffer computed in float64 and rounded once). */
  fround?: boolean;
  /** Names an element for reports (e.g. `step 3 (t = 16), [1,0,2,3]`); default: the multi-index. */
  locate?: (flatIndex: number) => string;
}

/** One golden case: an operation call with its checks, or a call that the reference refused. */
export interface GoldenCase {
  file: string;
  /** Unique within the file, e.g. `cases[3] linear T=1000 FIXED_LARGE/EPSILON clip`. */
  id: string;
  op: OpName;
  /** Call the operation; returns the outputs the checks name. */
  run(impl: DiffusionOps): Promise<Record<string, Tensor>>;
  checks: Check[];
  /** The reference code raised this error: the implementation must refuse (throw) too. */
  expectError?: string;
  /** Assumptions the reader made about this case, printed with its rows. */
  note?: string;
  /** Why the implementation may decline this case (`OpUnsupported`) without leaving the check incomplete. */
  optional?: string;
}

/**
 * Something a reader did not replay, and why: `not applicable` (documentation, provenance, an input that is no
 * operation's output: the reason says which), `not understood` (no reader knows the file, record or field; the
 * default) or `error` (a record the reader cannot use: `quantity` names the field, `reason` the problem).
 */
export interface Skip {
  file: string;
  case?: string;
  quantity?: string;
  reason: string;
  kind?: SkipKind;
}
export type SkipKind = 'not applicable' | 'not understood' | 'error';

/** What a file (or a folder) turns into. */
export interface GoldenCases {
  cases: GoldenCase[];
  skipped: Skip[];
}

/**
 * `pass`, `fail` (outside the tolerance), `error` (the implementation raised, or a record could not be used),
 * `declined` (an operation the implementation lists answered "unsupported"), `unread` (a file, record or field no
 * reader understands), `n/a` (not applicable, with the reason), `skip` (the operation is not implemented, or an
 * optional part was declined).
 */
export type Verdict = 'pass' | 'fail' | 'error' | 'declined' | 'unread' | 'n/a' | 'skip';

/** What the engine passes to every comparison and law. */
export interface ReplayContext {
  /** The arithmetic the implementation declared (default float32). */
  precision: Precision;
}

/** One row of a replay report. */
export interface Row {
  file: string;
  case: string;
  quantity: string;
  op?: OpName;
  verdict: Verdict;
  /** Largest |actual − expected| over compared finite pairs. */
  maxAbs: number;
  /** Largest |Δ|/|expected| over compared finite pairs with expected ≠ 0. */
  maxRel: number;
  /** Elements compared / elements masked out. */
  compared: number;
  masked: number;
  failures: number;
  /** `rtol 1e-5, atol 1e-6` or the per-element formula. */
  tolerance: string;
  /** Why this tolerance (and any mask). */
  reason: string;
  /** The worst element and values, an error message, or why it was skipped. */
  detail: string;
}

export type { DiffusionArgs, DiffusionOps, OpName, Tensor };
