/**
 * Small dense linear algebra in float64 on nested arrays, for the Gaussian closed forms.
 *
 * Conventions: a vector is a `readonly number[]` of length n; a matrix is a row-major
 * `readonly (readonly number[])[]`, `A[i][j]` being row i, column j, both 0-based. Dimensions here are small
 * (the specification works with D ≤ a few dozen), so every routine is the textbook O(n³) algorithm, chosen for
 * backward stability: Cholesky for symmetric positive definite (SPD) matrices, LU with partial pivoting for
 * general square ones, cyclic Jacobi for symmetric eigenproblems.
 *
 * Every function checks its arguments (rectangular, finite, matching dimensions) and throws an error that names
 * the function, the argument and the violated condition: `matMul: A has 3 columns but B has 2 rows`.
 *
 * @module
 */

/** A vector of doubles, 0-based (the argument type of {@link dot}, {@link matVec}, {@link solve}). */
export type Vector = readonly number[];
/** A row-major matrix of doubles: `A[i][j]` is row i, column j (0-based); the argument type of {@link matMul}, {@link cholesky}. */
export type Matrix = readonly (readonly number[])[];

// ---------------------------------------------------------------------------------------------------------------
// Argument checks (internal)

function fail(fn: string, message: string): never {
  throw new RangeError(`${fn}: ${message}`);
}

/** Checks that `x` is a non-empty array of finite numbers; returns its length. */
function checkVector(fn: string, arg: string, x: unknown): number {
  if (!Array.isArray(x)) fail(fn, `${arg} must be an array of numbers, got ${typeof x}`);
  if (x.length === 0) fail(fn, `${arg} must have at least one element`);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(fn, `${arg}[${i}] must be a finite number, got ${v}`);
  }
  return x.length;
}

/** Checks that `A` is a non-empty rectangular matrix of finite numbers; returns [rows, cols]. */
function checkMatrix(fn: string, arg: string, A: unknown): [number, number] {
  if (!Array.isArray(A)) fail(fn, `${arg} must be a matrix (an array of rows), got ${typeof A}`);
  if (A.length === 0) fail(fn, `${arg} must have at least one row`);
  const first = A[0];
  if (!Array.isArray(first)) fail(fn, `${arg}[0] must be a row (an array of numbers), got ${typeof first}`);
  const cols = first.length;
  if (cols === 0) fail(fn, `${arg} must have at least one column`);
  for (let i = 0; i < A.length; i++) {
    const row = A[i];
    if (!Array.isArray(row)) fail(fn, `${arg}[${i}] must be a row (an array of numbers), got ${typeof row}`);
    if (row.length !== cols) fail(fn, `${arg} must be rectangular: row 0 has ${cols} columns, row ${i} has ${row.length}`);
    for (let j = 0; j < cols; j++) {
      const v = row[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(fn, `${arg}[${i}][${j}] must be a finite number, got ${v}`);
    }
  }
  return [A.length, cols];
}

function checkSquare(fn: string, arg: string, A: unknown): number {
  const [r, c] = checkMatrix(fn, arg, A);
  if (r !== c) fail(fn, `${arg} must be square, got ${r}×${c}`);
  return r;
}

function isMatrixLike(b: unknown): b is Matrix {
  return Array.isArray(b) && b.length > 0 && Array.isArray(b[0]);
}

// ---------------------------------------------------------------------------------------------------------------
// Constructors and elementwise operations

/**
 * The n×n identity matrix.
 *
 * @param n - size, a positive integer
 * @see property `linalg.matMul.identityNeutral`
 */
export function identity(n: number): number[][] {
  if (!Number.isInteger(n) || n < 1) fail('identity', `n must be a positive integer, got ${n}`);
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

/**
 * The diagonal matrix with diagonal `d`.
 *
 * @see property `linalg.diag.roundTrip`
 */
export function diag(d: Vector): number[][] {
  const n = checkVector('diag', 'd', d);
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? d[i] : 0)));
}

/**
 * The diagonal of a square matrix.
 *
 * @see property `linalg.diag.roundTrip`
 */
export function diagOf(A: Matrix): number[] {
  const n = checkSquare('diagOf', 'A', A);
  return Array.from({ length: n }, (_, i) => A[i][i]);
}

/**
 * Transpose: $(A^\top)_{ij} = A_{ji}$.
 *
 * @see property `linalg.transpose.involution`
 */
export function transpose(A: Matrix): number[][] {
  const [r, c] = checkMatrix('transpose', 'A', A);
  return Array.from({ length: c }, (_, j) => Array.from({ length: r }, (_, i) => A[i][j]));
}

function sameShape(fn: string, A: Matrix, B: Matrix): [number, number] {
  const [ra, ca] = checkMatrix(fn, 'A', A);
  const [rb, cb] = checkMatrix(fn, 'B', B);
  if (ra !== rb || ca !== cb) fail(fn, `A and B must have the same shape, got ${ra}×${ca} and ${rb}×${cb}`);
  return [ra, ca];
}

/**
 * Sum of two matrices of the same shape, $A + B$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function addMat(A: Matrix, B: Matrix): number[][] {
  const [r, c] = sameShape('addMat', A, B);
  return Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => A[i][j] + B[i][j]));
}

/**
 * Difference of two matrices of the same shape, $A - B$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function subMat(A: Matrix, B: Matrix): number[][] {
  const [r, c] = sameShape('subMat', A, B);
  return Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => A[i][j] - B[i][j]));
}

/**
 * A matrix times a scalar, $sA$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function scaleMat(A: Matrix, s: number): number[][] {
  const [r, c] = checkMatrix('scaleMat', 'A', A);
  if (!Number.isFinite(s)) fail('scaleMat', `s must be a finite number, got ${s}`);
  return Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => s * A[i][j]));
}

function sameLength(fn: string, x: Vector, y: Vector, ax = 'x', ay = 'y'): number {
  const n = checkVector(fn, ax, x);
  const m = checkVector(fn, ay, y);
  if (n !== m) fail(fn, `${ax} and ${ay} must have the same length, got ${n} and ${m}`);
  return n;
}

/**
 * Sum of two vectors, $x + y$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function addVec(x: Vector, y: Vector): number[] {
  const n = sameLength('addVec', x, y);
  return Array.from({ length: n }, (_, i) => x[i] + y[i]);
}

/**
 * Difference of two vectors, $x - y$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function subVec(x: Vector, y: Vector): number[] {
  const n = sameLength('subVec', x, y);
  return Array.from({ length: n }, (_, i) => x[i] - y[i]);
}

/**
 * A vector times a scalar, $sx$.
 *
 * @see property `linalg.addMat.vectorSpace`
 */
export function scaleVec(x: Vector, s: number): number[] {
  checkVector('scaleVec', 'x', x);
  if (!Number.isFinite(s)) fail('scaleVec', `s must be a finite number, got ${s}`);
  return x.map((v) => s * v);
}

/**
 * Inner product $x^\top y = \sum_i x_i y_i$.
 *
 * @see property `linalg.dot.bilinear`
 */
export function dot(x: Vector, y: Vector): number {
  const n = sameLength('dot', x, y);
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * y[i];
  return s;
}

/**
 * Outer product $(xy^\top)_{ij} = x_i y_j$ (an n×m matrix for x of length n and y of length m).
 *
 * @see property `linalg.outer.rankOne`
 */
export function outer(x: Vector, y: Vector): number[][] {
  checkVector('outer', 'x', x);
  checkVector('outer', 'y', y);
  return x.map((xi) => y.map((yj) => xi * yj));
}

/**
 * Matrix product $(AB)_{ij} = \sum_k A_{ik}B_{kj}$.
 *
 * @see property `linalg.matMul.associative`
 * @see property `linalg.validate.namesArgument`
 * @see property `linalg.matMul.identityNeutral`
 */
export function matMul(A: Matrix, B: Matrix): number[][] {
  const [r, k] = checkMatrix('matMul', 'A', A);
  const [kb, c] = checkMatrix('matMul', 'B', B);
  if (k !== kb) fail('matMul', `A has ${k} columns but B has ${kb} rows`);
  const out: number[][] = [];
  for (let i = 0; i < r; i++) {
    const row = new Array<number>(c).fill(0);
    for (let l = 0; l < k; l++) {
      const a = A[i][l];
      if (a === 0) continue;
      const Bl = B[l];
      for (let j = 0; j < c; j++) row[j] += a * Bl[j];
    }
    out.push(row);
  }
  return out;
}

/**
 * Matrix–vector product $(Ax)_i = \sum_j A_{ij}x_j$.
 *
 * @see property `linalg.matVec.eqMatMul`
 */
export function matVec(A: Matrix, x: Vector): number[] {
  const [r, c] = checkMatrix('matVec', 'A', A);
  const n = checkVector('matVec', 'x', x);
  if (c !== n) fail('matVec', `A has ${c} columns but x has length ${n}`);
  return Array.from({ length: r }, (_, i) => {
    let s = 0;
    for (let j = 0; j < c; j++) s += A[i][j] * x[j];
    return s;
  });
}

/**
 * Trace $\operatorname{tr}A = \sum_i A_{ii}$.
 *
 * @see property `linalg.trace.cyclic`
 */
export function trace(A: Matrix): number {
  const n = checkSquare('trace', 'A', A);
  let s = 0;
  for (let i = 0; i < n; i++) s += A[i][i];
  return s;
}

/**
 * The symmetric part $\tfrac12(A + A^\top)$ of a square matrix; closed forms apply it to covariances they
 * return so that rounding never makes a covariance fail the symmetry check.
 *
 * @see property `linalg.symmetrize.idempotent`
 */
export function symmetrize(A: Matrix): number[][] {
  const n = checkSquare('symmetrize', 'A', A);
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => 0.5 * (A[i][j] + A[j][i])));
}

/**
 * The submatrix $A_{IJ}$ with rows `rows` and columns `cols` (0-based indices, in the order given).
 *
 * @see property `linalg.block.reassembles`
 */
export function subMatrix(A: Matrix, rows: readonly number[], cols: readonly number[]): number[][] {
  const [r, c] = checkMatrix('subMatrix', 'A', A);
  checkIndexList('subMatrix', 'rows', rows, r);
  checkIndexList('subMatrix', 'cols', cols, c);
  return rows.map((i) => cols.map((j) => A[i][j]));
}

/**
 * The block-diagonal matrix $\operatorname{diag}(A, B)$.
 *
 * @see property `linalg.block.reassembles`
 */
export function blockDiag(A: Matrix, B: Matrix): number[][] {
  const n = checkSquare('blockDiag', 'A', A);
  const m = checkSquare('blockDiag', 'B', B);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) out.push([...A[i], ...new Array<number>(m).fill(0)]);
  for (let i = 0; i < m; i++) out.push([...new Array<number>(n).fill(0), ...B[i]]);
  return out;
}

/**
 * Checks a list of 0-based indices into a dimension of size n: integers in [0, n), no repeats, not empty.
 * Exported for the probability and Gaussian modules, which index blocks of variables.
 *
 * @see property `linalg.block.reassembles`
 */
export function checkIndexList(fn: string, arg: string, idx: unknown, n: number): void {
  if (!Array.isArray(idx)) fail(fn, `${arg} must be an array of indices, got ${typeof idx}`);
  if (idx.length === 0) fail(fn, `${arg} must name at least one index`);
  const seen = new Set<number>();
  for (const i of idx) {
    if (!Number.isInteger(i) || i < 0 || i >= n) fail(fn, `${arg} must hold integers in [0, ${n}), got ${i}`);
    if (seen.has(i)) fail(fn, `${arg} must not repeat an index, got ${i} twice`);
    seen.add(i);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Factorisations and solves

/**
 * Cholesky factor of a symmetric positive definite matrix: the lower-triangular L with positive diagonal and
 * $A = LL^\top$. Only the lower triangle of A is read (symmetry is the caller's check: the `Gaussian` schema
 * does it).
 *
 * Throws `cholesky: A is not positive definite …` naming the first pivot that is not above n·ε·|A_jj| (a matrix
 * whose pivot is at the rounding level is singular to working precision: its condition number exceeds ~1/(nε)).
 *
 * @see property `linalg.cholesky.reconstructs`
 * @see property `linalg.cholesky.rejectsIndefinite`
 * @see property `linalg.validate.namesArgument`
 */
export function cholesky(A: Matrix): number[][] {
  const n = checkSquare('cholesky', 'A', A);
  const L: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    let s = A[j][j];
    for (let k = 0; k < j; k++) s -= L[j][k] * L[j][k];
    // A pivot at the rounding level of its diagonal entry means A is singular to working precision (an exactly
    // singular PSD matrix leaves a pivot of ±n·ε·A_jj): reject it rather than return a meaningless factor.
    const floor = n * Number.EPSILON * Math.abs(A[j][j]);
    if (!(s > floor) || !Number.isFinite(s)) {
      fail('cholesky', `A is not positive definite: pivot ${j} is ${s} (must be > ${floor > 0 ? `n·ε·|A[${j}][${j}]| = ${floor.toExponential(2)}` : '0'})`);
    }
    const d = Math.sqrt(s);
    L[j][j] = d;
    for (let i = j + 1; i < n; i++) {
      let t = A[i][j];
      for (let k = 0; k < j; k++) t -= L[i][k] * L[j][k];
      L[i][j] = t / d;
    }
  }
  return L;
}

/**
 * Solve $Lx = b$ for lower-triangular L by forward substitution (only the lower triangle is read).
 *
 * @see property `linalg.triangular.solves`
 */
export function solveLower(L: Matrix, b: Vector): number[] {
  const n = checkSquare('solveLower', 'L', L);
  const m = checkVector('solveLower', 'b', b);
  if (m !== n) fail('solveLower', `L is ${n}×${n} but b has length ${m}`);
  const x = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i][k] * x[k];
    if (L[i][i] === 0) fail('solveLower', `L is singular: L[${i}][${i}] = 0`);
    x[i] = s / L[i][i];
  }
  return x;
}

/**
 * Solve $Ux = b$ for upper-triangular U by back substitution (only the upper triangle is read).
 *
 * @see property `linalg.triangular.solves`
 */
export function solveUpper(U: Matrix, b: Vector): number[] {
  const n = checkSquare('solveUpper', 'U', U);
  const m = checkVector('solveUpper', 'b', b);
  if (m !== n) fail('solveUpper', `U is ${n}×${n} but b has length ${m}`);
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= U[i][k] * x[k];
    if (U[i][i] === 0) fail('solveUpper', `U is singular: U[${i}][${i}] = 0`);
    x[i] = s / U[i][i];
  }
  return x;
}

/** LU factorisation with partial pivoting, PA = LU, packed; throws when a pivot is exactly zero. */
function luFactor(fn: string, A: Matrix): { lu: number[][]; perm: number[] } {
  const n = checkSquare(fn, 'A', A);
  const lu = A.map((row) => [...row]);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(lu[i][k]) > Math.abs(lu[p][k])) p = i;
    if (lu[p][k] === 0) fail(fn, `A is singular: no non-zero pivot in column ${k}`);
    if (p !== k) {
      [lu[p], lu[k]] = [lu[k], lu[p]];
      [perm[p], perm[k]] = [perm[k], perm[p]];
    }
    for (let i = k + 1; i < n; i++) {
      const f = (lu[i][k] /= lu[k][k]);
      if (f === 0) continue;
      for (let j = k + 1; j < n; j++) lu[i][j] -= f * lu[k][j];
    }
  }
  return { lu, perm };
}

function luSolveVec(lu: number[][], perm: number[], b: Vector): number[] {
  const n = lu.length;
  const y = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[perm[i]];
    for (let k = 0; k < i; k++) s -= lu[i][k] * y[k];
    y[i] = s;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= lu[i][k] * y[k];
    y[i] = s / lu[i][i];
  }
  return y;
}

/**
 * Solve $AX = B$ for square non-singular A by LU with partial pivoting. B may be a vector (returns a vector) or a
 * matrix with as many rows as A (returns a matrix, one solve per column).
 *
 * @see property `linalg.solve.residual`
 * @see property `linalg.validate.namesArgument`
 */
export function solve(A: Matrix, b: Vector): number[];
export function solve(A: Matrix, b: Matrix): number[][];
export function solve(A: Matrix, b: Vector | Matrix): number[] | number[][] {
  const n = checkSquare('solve', 'A', A);
  if (isMatrixLike(b)) {
    const [r, c] = checkMatrix('solve', 'b', b);
    if (r !== n) fail('solve', `A is ${n}×${n} but b has ${r} rows`);
    const { lu, perm } = luFactor('solve', A);
    const cols = Array.from({ length: c }, (_, j) => luSolveVec(lu, perm, b.map((row) => row[j])));
    return Array.from({ length: n }, (_, i) => cols.map((col) => col[i]));
  }
  const m = checkVector('solve', 'b', b);
  if (m !== n) fail('solve', `A is ${n}×${n} but b has length ${m}`);
  const { lu, perm } = luFactor('solve', A);
  return luSolveVec(lu, perm, b as Vector);
}

/**
 * Inverse $A^{-1}$ of a square non-singular matrix (LU with partial pivoting). Prefer {@link solve} or
 * {@link cholesky} in formulas; the inverse is for the closed forms that are stated with one (precisions).
 *
 * @see property `linalg.inverse.inverseOfMatMul`
 */
export function inverse(A: Matrix): number[][] {
  const n = checkSquare('inverse', 'A', A);
  const { lu, perm } = luFactor('inverse', A);
  const cols = Array.from({ length: n }, (_, j) => luSolveVec(lu, perm, Array.from({ length: n }, (_, i) => (i === j ? 1 : 0))));
  return Array.from({ length: n }, (_, i) => cols.map((col) => col[i]));
}

/**
 * Inverse of a symmetric positive definite matrix through its Cholesky factor, $A^{-1} = L^{-\top}L^{-1}$,
 * returned exactly symmetric.
 *
 * @see property `linalg.inverse.inverseOfMatMul`
 */
export function inverseSpd(A: Matrix): number[][] {
  const n = checkSquare('inverseSpd', 'A', A);
  const L = cholesky(A);
  const Lt = transpose(L);
  const cols = Array.from({ length: n }, (_, j) => solveUpper(Lt, solveLower(L, Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)))));
  return symmetrize(Array.from({ length: n }, (_, i) => cols.map((col) => col[i])));
}

/**
 * Log-determinant of a symmetric positive definite matrix, $\log\det A = 2\sum_i \log L_{ii}$ with $A = LL^\top$
 * (natural log; never overflows where $\det A$ would).
 *
 * @see property `linalg.logDetSpd.eqEigenvalues`
 */
export function logDetSpd(A: Matrix): number {
  const L = cholesky(A);
  let s = 0;
  for (let i = 0; i < L.length; i++) s += Math.log(L[i][i]);
  return 2 * s;
}

/**
 * Determinant of a square matrix, $\det A = \pm\prod_i U_{ii}$ from LU with partial pivoting (0 for an exactly
 * singular matrix).
 *
 * @see property `linalg.det.multiplicative`
 */
export function det(A: Matrix): number {
  checkSquare('det', 'A', A);
  let f: { lu: number[][]; perm: number[] };
  try {
    f = luFactor('det', A);
  } catch {
    return 0;
  }
  let d = 1;
  for (let i = 0; i < f.lu.length; i++) d *= f.lu[i][i];
  // Parity of the permutation.
  const seen = new Array<boolean>(f.perm.length).fill(false);
  for (let i = 0; i < f.perm.length; i++) {
    if (seen[i]) continue;
    let len = 0;
    for (let j = i; !seen[j]; j = f.perm[j]) {
      seen[j] = true;
      len++;
    }
    if (len % 2 === 0) d = -d;
  }
  return d;
}

/**
 * Eigen-decomposition of a symmetric matrix by the cyclic Jacobi method: $A = V\,\operatorname{diag}(\lambda)\,V^\top$
 * with V orthogonal, eigenvalues in ascending order and `vectors[i][k]` the i-th entry of the k-th eigenvector.
 * Jacobi is slow (O(n³) per sweep) but computes the small eigenvalues of an SPD matrix to high relative accuracy,
 * which is what a condition number needs. Only symmetric input is meaningful (the upper triangle is trusted).
 *
 * @see property `linalg.symmetricEigen.reconstructs`
 */
export function symmetricEigen(A: Matrix): { values: number[]; vectors: number[][] } {
  const n = checkSquare('symmetricEigen', 'A', A);
  const a = A.map((row) => [...row]);
  const v = identity(n);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let scale = 0;
    for (let i = 0; i < n; i++) {
      scale += a[i][i] * a[i][i];
      for (let j = i + 1; j < n; j++) off += a[i][j] * a[i][j];
    }
    if (off <= 1e-32 * scale || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p][q];
        if (apq === 0) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[i][i] - a[j][j]);
  return { values: order.map((i) => a[i][i]), vectors: v.map((row) => order.map((k) => row[k])) };
}

/**
 * Condition number of a square matrix in the 1-norm, $\kappa_1(A) = \|A\|_1\,\|A^{-1}\|_1$ with
 * $\|A\|_1 = \max_j \sum_i |A_{ij}|$ (computed exactly through the inverse; fine at these sizes). Within a
 * factor n of the 2-norm condition number; `Infinity` for a singular matrix. Properties scale their tolerances
 * by it: a backward-stable solve has relative forward error about κ·ε.
 *
 * @see property `linalg.conditionNumber.boundsSpectral`
 */
export function conditionNumber(A: Matrix): number {
  checkSquare('conditionNumber', 'A', A);
  let inv: number[][];
  try {
    inv = inverse(A);
  } catch {
    return Infinity;
  }
  const norm1 = (M: Matrix) => {
    let best = 0;
    for (let j = 0; j < M.length; j++) {
      let s = 0;
      for (let i = 0; i < M.length; i++) s += Math.abs(M[i][j]);
      best = Math.max(best, s);
    }
    return best;
  };
  return norm1(A) * norm1(inv);
}
