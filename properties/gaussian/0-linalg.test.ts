import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import {
  addMat,
  addVec,
  blockDiag,
  checkIndexList,
  cholesky,
  conditionNumber,
  det,
  diag,
  diagOf,
  dot,
  identity,
  inverse,
  inverseSpd,
  logDetSpd,
  matMul,
  matVec,
  outer,
  scaleMat,
  scaleVec,
  solve,
  solveLower,
  solveUpper,
  subMat,
  subMatrix,
  subVec,
  symmetricEigen,
  symmetrize,
  trace,
  transpose,
} from '../../spec/linalg.ts';
import { real, rectMatrix, spdMatrix, squareMatrix, vector } from './arbitraries.ts';

const flat = (A: readonly (readonly number[])[]) => A.flat();
const absM = (A: readonly (readonly number[])[]) => A.map((r) => r.map(Math.abs));
const maxAbs = (xs: readonly number[]) => xs.reduce((a, x) => Math.max(a, Math.abs(x)), 0);

/** Rectangular shapes 1–5 × 1–5 (every case from scalar to a 5×5 block). */
const shape = fc.record({ r: fc.integer({ min: 1, max: 5 }), c: fc.integer({ min: 1, max: 5 }) });

describe('2.0 Dense linear algebra in float64', () => {
  it('the identity is neutral for the matrix product, exactly  [linalg.matMul.identityNeutral]', () =>
    fc.assert(
      fc.property(shape.chain(({ r, c }) => rectMatrix(r, c)), (A) => {
        expect(flat(matMul(identity(A.length), A))).toBeCloseWithin(flat(A), TOL.exact);
        expect(flat(matMul(A, identity(A[0].length)))).toBeCloseWithin(flat(A), TOL.exact);
      }),
    ));

  it('the matrix product is associative up to rounding bounded by ε·|A||B||C|  [linalg.matMul.associative]', () =>
    fc.assert(
      fc.property(
        fc.record({ a: fc.integer({ min: 1, max: 5 }), b: fc.integer({ min: 1, max: 5 }), c: fc.integer({ min: 1, max: 5 }), d: fc.integer({ min: 1, max: 5 }) }).chain(({ a, b, c, d }) =>
          fc.tuple(rectMatrix(a, b), rectMatrix(b, c), rectMatrix(c, d)),
        ),
        ([A, B, C]) => {
          const bound = maxAbs(flat(matMul(matMul(absM(A), absM(B)), absM(C))));
          const tol = override({ rtol: 0, atol: 1e-14 * (bound + 1) }, 'rounding of two products of ≤ 5 terms each is ≤ 10ε·(|A||B||C|)');
          expect(flat(matMul(matMul(A, B), C))).toBeCloseWithin(flat(matMul(A, matMul(B, C))), tol);
        },
      ),
    ));

  it('the matrix–vector product is the matrix product with a column, exactly  [linalg.matVec.eqMatMul]', () =>
    fc.assert(
      fc.property(shape.chain(({ r, c }) => fc.tuple(rectMatrix(r, c), vector(c))), ([A, x]) => {
        expect(matVec(A, x)).toBeCloseWithin(flat(matMul(A, x.map((v) => [v]))), TOL.exact);
      }),
    ));

  it('transpose is an involution and (AB)ᵀ = BᵀAᵀ exactly  [linalg.transpose.involution]', () =>
    fc.assert(
      fc.property(
        fc.record({ a: fc.integer({ min: 1, max: 4 }), b: fc.integer({ min: 1, max: 4 }), c: fc.integer({ min: 1, max: 4 }) }).chain(({ a, b, c }) => fc.tuple(rectMatrix(a, b), rectMatrix(b, c))),
        ([A, B]) => {
          expect(flat(transpose(transpose(A)))).toBeCloseWithin(flat(A), TOL.exact);
          expect(flat(transpose(matMul(A, B)))).toBeCloseWithin(flat(matMul(transpose(B), transpose(A))), TOL.exact);
        },
      ),
    ));

  it('addition, subtraction and scaling of matrices and vectors obey the vector-space laws  [linalg.addMat.vectorSpace]', () =>
    fc.assert(
      fc.property(shape.chain(({ r, c }) => fc.tuple(rectMatrix(r, c), rectMatrix(r, c), vector(c))), real(-3, 3), ([A, B, x], s) => {
        expect(flat(addMat(A, B))).toBeCloseWithin(flat(addMat(B, A)), TOL.exact);
        expect(flat(subMat(addMat(A, B), B))).toBeCloseWithin(flat(A), override({ rtol: 0, atol: 1e-15 * 8 }, 'one rounding of (a + b) − b with |a|, |b| ≤ 2'));
        expect(flat(scaleMat(A, 2))).toBeCloseWithin(flat(addMat(A, A)), TOL.exact);
        expect(flat(scaleMat(A, s))).toBeCloseWithin(A.flat().map((v) => s * v), TOL.exact);
        expect(addVec(x, x)).toBeCloseWithin(scaleVec(x, 2), TOL.exact);
        expect(subVec(x, x)).toBeCloseWithin(0, TOL.exact);
      }),
    ));

  it('the inner product is symmetric, positive on x ≠ 0 and linear  [linalg.dot.bilinear]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(vector(n), vector(n), vector(n))), real(-3, 3), ([x, y, z], a) => {
        expect(dot(x, y)).toBeCloseWithin(dot(y, x), TOL.exact);
        expect(dot(x, x)).toBeGreaterThanOrEqual(0);
        const scale = dot(x.map(Math.abs), y.map((v, i) => Math.abs(a * v) + Math.abs(z[i])));
        expect(dot(x, addVec(scaleVec(y, a), z))).toBeCloseWithin(a * dot(x, y) + dot(x, z), override({ rtol: 0, atol: 1e-14 * (scale + 1) }, 'rounding of 6-term sums, relative to Σ|x||ay + z|'));
      }),
    ));

  it('the outer product is rank one: (xyᵀ)z = x(yᵀz)  [linalg.outer.rankOne]', () =>
    fc.assert(
      fc.property(fc.record({ n: fc.integer({ min: 1, max: 6 }), m: fc.integer({ min: 1, max: 6 }) }).chain(({ n, m }) => fc.tuple(vector(n), vector(m), vector(m))), ([x, y, z]) => {
        const yz = dot(y, z);
        const scale = dot(y.map(Math.abs), z.map(Math.abs));
        expect(matVec(outer(x, y), z)).toBeCloseWithin(x.map((v) => v * yz), override({ rtol: 0, atol: 1e-14 * (scale * maxAbs(x) + 1) }, 'rounding of 6-term sums, relative to |x|·Σ|y||z|'));
      }),
    ));

  it('the trace is cyclic: tr(AB) = tr(BA)  [linalg.trace.cyclic]', () =>
    fc.assert(
      fc.property(fc.record({ a: fc.integer({ min: 1, max: 5 }), b: fc.integer({ min: 1, max: 5 }) }).chain(({ a, b }) => fc.tuple(rectMatrix(a, b), rectMatrix(b, a))), ([A, B]) => {
        const scale = trace(matMul(absM(A), absM(B)));
        expect(trace(matMul(A, B))).toBeCloseWithin(trace(matMul(B, A)), override({ rtol: 0, atol: 1e-14 * (scale + 1) }, 'the two sums of 25 products round differently; bound relative to tr(|A||B|)'));
      }),
    ));

  it('symmetrize gives an exactly symmetric matrix and is idempotent  [linalg.symmetrize.idempotent]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain((n) => rectMatrix(n, n)), (A) => {
        const S = symmetrize(A);
        expect(flat(S)).toBeCloseWithin(flat(transpose(S)), TOL.exact);
        expect(flat(symmetrize(S))).toBeCloseWithin(flat(S), TOL.exact);
      }),
    ));

  it('diag and diagOf are inverse on vectors  [linalg.diag.roundTrip]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain((n) => vector(n)), (d) => {
        expect(diagOf(diag(d))).toBeCloseWithin(d, TOL.exact);
        expect(flat(diag(d)).filter((v) => v !== 0).length).toBeLessThanOrEqual(d.length);
      }),
    ));

  it('the blocks of a block-diagonal matrix are its arguments, and index lists are checked  [linalg.block.reassembles]', () =>
    fc.assert(
      fc.property(fc.record({ n: fc.integer({ min: 1, max: 4 }), m: fc.integer({ min: 1, max: 4 }) }).chain(({ n, m }) => fc.tuple(rectMatrix(n, n), rectMatrix(m, m))), ([A, B]) => {
        const n = A.length;
        const m = B.length;
        const J = blockDiag(A, B);
        const ia = Array.from({ length: n }, (_, i) => i);
        const ib = Array.from({ length: m }, (_, i) => n + i);
        expect(flat(subMatrix(J, ia, ia))).toBeCloseWithin(flat(A), TOL.exact);
        expect(flat(subMatrix(J, ib, ib))).toBeCloseWithin(flat(B), TOL.exact);
        expect(flat(subMatrix(J, ia, ib))).toBeCloseWithin(0, TOL.exact);
        expect(() => checkIndexList('f', 'idx', [0, 0], n + m)).toThrow(/f: idx must not repeat an index, got 0 twice/);
        expect(() => checkIndexList('f', 'idx', [n + m], n + m)).toThrow(new RegExp(`f: idx must hold integers in \\[0, ${n + m}\\)`));
      }),
    ));

  it('the Cholesky factor is lower triangular with a positive diagonal and LLᵀ = A to backward error ε‖A‖, for κ up to 1e8  [linalg.cholesky.reconstructs]', () =>
    fc.assert(
      fc.property(spdMatrix(), (s) => {
        const L = cholesky(s.cov);
        for (let i = 0; i < s.dim; i++) {
          expect(L[i][i]).toBeGreaterThan(0);
          for (let j = i + 1; j < s.dim; j++) expect(L[i][j]).toBe(0);
        }
        // Backward error of Cholesky: |LLᵀ − A| ≤ c·n·ε·√(A_ii A_jj), independent of κ.
        const LLt = matMul(L, transpose(L));
        const scale = Math.max(...s.cov.map((r, i) => r[i]));
        expect(flat(LLt)).toBeCloseWithin(flat(s.cov), override({ rtol: 0, atol: 1e-14 * s.dim * scale }, 'Cholesky is backward stable: |LLᵀ − A| ≤ c·n·ε·max A_ii whatever κ'));
      }),
    ));

  it('Cholesky rejects a matrix that is not positive definite, naming the pivot  [linalg.cholesky.rejectsIndefinite]', () =>
    fc.assert(
      fc.property(spdMatrix({ minDim: 1, maxDim: 6, maxLogCond: 3 }), (s) => {
        // Flip the smallest eigenvalue: Σ − 2λ_min q qᵀ has eigenvalue −λ_min.
        const q = s.Q.map((r) => r[0]);
        const bad = subMat(s.cov, scaleMat(outer(q, q), 2 * s.lambda[0]));
        expect(() => cholesky(bad)).toThrow(/^cholesky: A is not positive definite: pivot \d+ is -?[\d.e+-]+ \(must be > (0|n·ε·\|A\[\d+\]\[\d+\]\| = [\d.e+-]+)\)$/);
        // A zero diagonal entry gives the bound 0; a non-zero one names the rounding floor n·ε·|A_jj| with its value.
        expect(() => cholesky([[0]])).toThrow('cholesky: A is not positive definite: pivot 0 is 0 (must be > 0)');
        expect(() => cholesky([[-1e-3]])).toThrow('cholesky: A is not positive definite: pivot 0 is -0.001 (must be > n·ε·|A[0][0]| = 2.22e-19)');
        // A singular PSD matrix (rank one) leaves a pivot at the rounding level and is rejected too.
        const v = s.Q.map((r) => r[s.dim - 1]);
        if (s.dim > 1) expect(() => cholesky(outer(v, v))).toThrow(/^cholesky: A is not positive definite/);
      }),
    ));

  it('triangular solves invert the triangular product  [linalg.triangular.solves]', () =>
    fc.assert(
      fc.property(spdMatrix({ maxLogCond: 4 }).chain((s) => fc.tuple(fc.constant(s), vector(s.dim))), ([s, b]) => {
        const L = cholesky(s.cov);
        const U = transpose(L);
        const x = solveLower(L, b);
        const y = solveUpper(U, b);
        // Residuals of triangular solves are backward stable: |Lx − b| ≤ n·ε·|L||x|.
        const rl = matVec(absM(L), x.map(Math.abs));
        const ru = matVec(absM(U), y.map(Math.abs));
        matVec(L, x).forEach((v, i) => expect(v).toBeCloseWithin(b[i], override({ rtol: 0, atol: 1e-14 * s.dim * rl[i] + 1e-300 }, 'triangular solves are backward stable: |Lx − b| ≤ n·ε·(|L||x|)')));
        matVec(U, y).forEach((v, i) => expect(v).toBeCloseWithin(b[i], override({ rtol: 0, atol: 1e-14 * s.dim * ru[i] + 1e-300 }, 'triangular solves are backward stable: |Ux − b| ≤ n·ε·(|U||x|)')));
      }),
    ));

  it('solve leaves a residual of backward-error size for vector and matrix right sides, κ up to 1e8  [linalg.solve.residual]', () =>
    fc.assert(
      fc.property(squareMatrix().chain((c) => fc.tuple(fc.constant(c), vector(c.dim), rectMatrix(c.dim, 2))), ([c, b, B]) => {
        const x = solve(c.A, b);
        const X = solve(c.A, B);
        // LU with partial pivoting is normwise backward stable: ‖Ax − b‖∞ ≤ c·n·ε·(‖A‖∞‖x‖∞ + ‖b‖∞).
        const normA = Math.max(...c.A.map((r) => r.reduce((a, v) => a + Math.abs(v), 0)));
        const why = 'LU with partial pivoting is normwise backward stable: ‖Ax − b‖∞ ≤ c·n·ε·(‖A‖∞‖x‖∞ + ‖b‖∞)';
        expect(matVec(c.A, x)).toBeCloseWithin(b, override({ rtol: 0, atol: 1e-13 * c.dim * (normA * maxAbs(x) + maxAbs(b)) }, why));
        for (let j = 0; j < 2; j++) {
          const xj = X.map((r) => r[j]);
          const bj = B.map((r) => r[j]);
          expect(matVec(c.A, xj)).toBeCloseWithin(bj, override({ rtol: 0, atol: 1e-13 * c.dim * (normA * maxAbs(xj) + maxAbs(bj)) }, `${why}; one solve per column`));
          expect(xj).toBeCloseWithin(solve(c.A, bj), TOL.exact);
        }
      }),
    ));

  it('the inverse satisfies AA⁻¹ = I to κ·ε, for κ up to 1e8  [linalg.inverse.inverseOfMatMul]', () =>
    fc.assert(
      fc.property(squareMatrix(), spdMatrix(), (c, s) => {
        const I = flat(identity(c.dim));
        expect(flat(matMul(c.A, inverse(c.A)))).toBeCloseWithin(I, override({ rtol: 0, atol: 1e-14 * c.dim * c.cond }, `κ = ${c.cond.toExponential(1)}: ‖AX − I‖ ≤ c·n·κ·ε for a backward-stable inverse`));
        expect(flat(matMul(s.cov, inverseSpd(s.cov)))).toBeCloseWithin(flat(identity(s.dim)), override({ rtol: 0, atol: 1e-14 * s.dim * s.cond }, `κ = ${s.cond.toExponential(1)}: ‖ΣX − I‖ ≤ c·n·κ·ε`));
        const X = inverseSpd(s.cov);
        expect(flat(X)).toBeCloseWithin(flat(transpose(X)), TOL.exact);
      }),
    ));

  it('log det of an SPD matrix is the sum of the logs of its eigenvalues, for κ up to 1e8  [linalg.logDetSpd.eqEigenvalues]', () =>
    fc.assert(
      fc.property(spdMatrix(), (s) => {
        const expected = s.lambda.reduce((a, l) => a + Math.log(l), 0);
        // A relative perturbation of size ε·κ of Σ moves log det by at most n·κ·ε (first order: tr(Σ⁻¹δΣ)).
        expect(logDetSpd(s.cov)).toBeCloseWithin(expected, override({ rtol: 0, atol: 1e-14 * s.dim * s.cond + 1e-13 }, `κ = ${s.cond.toExponential(1)}: |δ log det| ≤ n·κ·ε`));
      }),
    ));

  it('the determinant is multiplicative and agrees with log det on SPD matrices  [linalg.det.multiplicative]', () =>
    fc.assert(
      fc.property(squareMatrix({ maxDim: 5, maxLogCond: 3 }), squareMatrix({ maxDim: 5, maxLogCond: 3 }), spdMatrix({ maxLogCond: 3 }), (a, b, s) => {
        expect(det(identity(a.dim))).toBe(1);
        if (a.dim === b.dim) {
          const tol = override({ rtol: 1e-11, atol: 0 }, 'κ ≤ 1e3 on both sides: relative error of a determinant ≤ n·κ·ε each');
          expect(det(matMul(a.A, b.A))).toBeCloseWithin(det(a.A) * det(b.A), tol);
        }
        expect(Math.log(det(s.cov))).toBeCloseWithin(logDetSpd(s.cov), override({ rtol: 0, atol: 1e-11 }, 'κ ≤ 1e3: |δ log det| ≤ n·κ·ε'));
        expect(det([[1, 2], [2, 4]])).toBe(0);
      }),
    ));

  it('the Jacobi eigen-decomposition reconstructs the matrix with orthogonal vectors and the known eigenvalues  [linalg.symmetricEigen.reconstructs]', () =>
    fc.assert(
      fc.property(spdMatrix(), (s) => {
        const { values, vectors: V } = symmetricEigen(s.cov);
        const lmax = s.lambda[s.dim - 1];
        const tol = override({ rtol: 0, atol: 1e-13 * s.dim * lmax }, 'eigenvalues of a symmetric matrix are perturbed by at most ‖δA‖₂ ≈ n·ε·λ_max (Weyl)');
        expect(values).toBeCloseWithin(s.lambda, tol);
        expect(flat(matMul(transpose(V), V))).toBeCloseWithin(flat(identity(s.dim)), override({ rtol: 0, atol: 1e-13 * s.dim }, 'Jacobi rotations keep V orthogonal to n·ε per sweep'));
        expect(flat(matMul(matMul(V, diag(values)), transpose(V)))).toBeCloseWithin(flat(s.cov), tol);
      }),
    ));

  it('the 1-norm condition number is within a factor n of the spectral one  [linalg.conditionNumber.boundsSpectral]', () =>
    fc.assert(
      fc.property(spdMatrix(), (s) => {
        const k1 = conditionNumber(s.cov);
        // ‖A‖₁ ∈ [‖A‖₂/√n, √n‖A‖₂] so κ₁ ∈ [κ₂/n, n·κ₂]; 1% slack for the rounding of the inverse at κ = 1e8.
        expect(k1).toBeGreaterThanOrEqual((s.cond / s.dim) * 0.99);
        expect(k1).toBeLessThanOrEqual(s.cond * s.dim * 1.01);
        expect(conditionNumber([[1, 1], [1, 1]])).toBe(Infinity);
      }),
    ));

  it('bad input is rejected with the function, the argument and the violated condition  [linalg.validate.namesArgument]', () => {
    expect(() => matMul([[1, 2, 3]], [[1], [2]])).toThrow('matMul: A has 3 columns but B has 2 rows');
    expect(() => matVec([[1, 2]], [1, 2, 3])).toThrow('matVec: A has 2 columns but x has length 3');
    expect(() => addMat([[1, 2]], [[1], [2]])).toThrow('addMat: A and B must have the same shape, got 1×2 and 2×1');
    expect(() => transpose([[1, 2], [3]])).toThrow('transpose: A must be rectangular: row 0 has 2 columns, row 1 has 1');
    expect(() => dot([1, Number.NaN], [1, 2])).toThrow('dot: x[1] must be a finite number, got NaN');
    expect(() => cholesky([[1, 2, 3], [4, 5, 6]])).toThrow('cholesky: A must be square, got 2×3');
    expect(() => solve([[1, 0], [0, 1]], [1, 2, 3])).toThrow('solve: A is 2×2 but b has length 3');
    expect(() => solve([[1, 2], [2, 4]], [1, 2])).toThrow(/^solve: A is singular/);
    expect(() => inverse([[0, 0], [0, 0]])).toThrow(/^inverse: A is singular/);
    expect(() => identity(0)).toThrow('identity: n must be a positive integer, got 0');
    expect(() => scaleMat([[1]], Number.POSITIVE_INFINITY)).toThrow('scaleMat: s must be a finite number, got Infinity');
  });
});
