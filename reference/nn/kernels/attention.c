/*
 * Single-head scaled dot-product attention, forward and backward, for the wasm backend: compiled to a
 * WebAssembly module with 128-bit SIMD that imports the tfjs-backend-wasm heap as its memory (see
 * attentionKernels.ts for the maths and tools/build-kernels.sh for the build). Same rules as groupnorm.c: no
 * static data, no stack, no C library; every buffer is passed in.
 *
 * Layout: q, k, v, o [N, P, C] row-major. For example e, row i: s_j = scale * <q_i, k_j>, w = softmax(s),
 * o_i = sum_j w_j v_j. The products are blocked (4 query rows x 8 columns accumulated in SIMD registers, blocks
 * of QB queries) without reordering any sum: each one runs over its terms in the order a row-by-row loop would.
 */
#include <wasm_simd128.h>
#include "exp_approx.h"

/* dst[c*P + j] = src[j*C + c] */
static void transpose(const float *__restrict__ src, int p, int c, float *__restrict__ dst) {
  for (int j = 0; j < p; j++)
    for (int ch = 0; ch < c; ch++) dst[ch * p + j] = src[j * c + ch];
}

/* w[0..P) = softmax(w[0..P)) in place. */
static void softmax_inplace(float *w, int p) {
  float m = w[0];
  for (int j = 1; j < p; j++) m = w[j] > m ? w[j] : m;
  float sum = 0;
  for (int j = 0; j < p; j++) {
    w[j] = exp_approx(w[j] - m);
    sum += w[j];
  }
  float inv = 1.0f / sum;
  for (int j = 0; j < p; j++) w[j] *= inv;
}

/* Queries per block of the forward pass: its scores [QB, P] stay in scratch between the two products. */
#define QB 64

/* The 4 x 8 register tile: c_r += s_r * (g0, g1) for the rows r = 0..3 (accumulators c00 .. c31 in scope). */
#define TILE_4X8_ADD(s0, s1, s2, s3, g0, g1)                                                                    \
  c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(s0, g0)), c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(s0, g1));         \
  c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(s1, g0)), c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(s1, g1));         \
  c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(s2, g0)), c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(s2, g1));         \
  c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(s3, g0)), c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(s3, g1));

/*
 * out[r][0..n) = sum over k of a[r][k] * b[k][0..n) for the rows r < rows of a (row-major [rows, K]); b is
 * row-major [K, n] and out's rows are out_stride apart. Columns go 8 at a time in the outer loop, so that the
 * panel b[0..K)[j..j+8) stays in the L1 cache while every group of 4 rows reads it; a group accumulates its 4 x 8
 * sums in registers. Each sum starts at 0 and adds a[r][k] * b[k][j] for k = 0, 1, ... in that order, as the
 * row-by-row loop would, so blocking changes the speed and not a single bit of the result.
 */
static void rows_times(const float *a, int rows, const float *__restrict__ b, int kk, int n, float *__restrict__ out, long out_stride) {
  int n8 = n & ~7;
  for (int j = 0; j < n8; j += 8)
    for (int r = 0; r < rows; r += 4) {
      int m = rows - r < 4 ? rows - r : 4;
      const float *a0 = a + (long)r * kk;
      const float *a1 = m > 1 ? a0 + kk : a0, *a2 = m > 2 ? a0 + 2 * kk : a0, *a3 = m > 3 ? a0 + 3 * kk : a0;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const float *bp = b + j;
      for (int k = 0; k < kk; k++, bp += n) {
        v128_t g0 = wasm_v128_load(bp), g1 = wasm_v128_load(bp + 4);
        v128_t s0 = wasm_v128_load32_splat(a0 + k), s1 = wasm_v128_load32_splat(a1 + k);
        v128_t s2 = wasm_v128_load32_splat(a2 + k), s3 = wasm_v128_load32_splat(a3 + k);
        TILE_4X8_ADD(s0, s1, s2, s3, g0, g1)
      }
      float *o = out + (long)r * out_stride + j;
      wasm_v128_store(o, c00), wasm_v128_store(o + 4, c01);
      if (m > 1) wasm_v128_store(o + out_stride, c10), wasm_v128_store(o + out_stride + 4, c11);
      if (m > 2) wasm_v128_store(o + 2 * out_stride, c20), wasm_v128_store(o + 2 * out_stride + 4, c21);
      if (m > 3) wasm_v128_store(o + 3 * out_stride, c30), wasm_v128_store(o + 3 * out_stride + 4, c31);
    }
  for (int r = 0; r < rows; r++)
    for (int j = n8; j < n; j++) {
      float s = 0;
      for (int k = 0; k < kk; k++) s += a[(long)r * kk + k] * b[(long)k * n + j];
      out[(long)r * out_stride + j] = s;
    }
}

/* Scratch floats needed by either function: the forward's K^T, scaled queries and score block; the backward's. */
static int backward_scratch(int p, int c);
int attn_scratch_floats(int p, int c) {
  int fwd = p * c + QB * c + QB * p;
  int bwd = backward_scratch(p, c);
  return fwd > bwd ? fwd : bwd;
}

/*
 * Forward, QB queries at a time: the scores s = (scale q) K^T of the block as products of 4 query rows with K^T,
 * a softmax per row, then o = w V as products of 4 rows of w with V. Every sum has the terms and the order of the
 * row-by-row loop (s_j = sum over channels in order of (scale q_i[ch]) K[j][ch]; o_i = sum over j in order of
 * w_j v_j), so the blocking changes the speed, not the values.
 */
void attn_forward(const float *q, const float *k, const float *v, int n, int p, int c, float scale, float *o, float *scratch) {
  float *kT = scratch;
  float *qs = scratch + (long)p * c;
  float *w = qs + (long)QB * c;
  for (int e = 0; e < n; e++) {
    const float *qe = q + (long)e * p * c;
    const float *ve = v + (long)e * p * c;
    float *oe = o + (long)e * p * c;
    transpose(k + (long)e * p * c, p, c, kT);
    for (int i0 = 0; i0 < p; i0 += QB) {
      int rows = p - i0 < QB ? p - i0 : QB;
      const float *qb = qe + (long)i0 * c;
      for (long x = 0; x < (long)rows * c; x++) qs[x] = qb[x] * scale;
      rows_times(qs, rows, kT, c, p, w, p);
      for (int r = 0; r < rows; r++) softmax_inplace(w + (long)r * p, p);
      rows_times(w, rows, ve, p, c, oe + (long)i0 * c, c);
    }
  }
}

/*
 * out[j][0..n) += sum over r of a[r][j] * b[r][0..n) for r = 0, 1, ..., rows-1 in that order, j < na (a is
 * row-major [rows, na], b [rows, n], out [na, n]): the same bits as adding the rows' terms one r at a time,
 * with each element of out loaded and stored once per call instead of once per r.
 */
static void rows_t_times_add(const float *a, int rows, int na, const float *__restrict__ b, int n, float *__restrict__ out) {
  int n8 = n & ~7;
  for (int j = 0; j < na; j += 4) {
    int m = na - j < 4 ? na - j : 4;
    int j1 = m > 1 ? j + 1 : j, j2 = m > 2 ? j + 2 : j, j3 = m > 3 ? j + 3 : j;
    float *o0 = out + (long)j * n, *o1 = out + (long)j1 * n, *o2 = out + (long)j2 * n, *o3 = out + (long)j3 * n;
    for (int col = 0; col < n8; col += 8) {
      v128_t c00 = wasm_v128_load(o0 + col), c01 = wasm_v128_load(o0 + col + 4);
      v128_t c10 = wasm_v128_load(o1 + col), c11 = wasm_v128_load(o1 + col + 4);
      v128_t c20 = wasm_v128_load(o2 + col), c21 = wasm_v128_load(o2 + col + 4);
      v128_t c30 = wasm_v128_load(o3 + col), c31 = wasm_v128_load(o3 + col + 4);
      const float *ar = a, *br = b + col;
      for (int r = 0; r < rows; r++, ar += na, br += n) {
        v128_t g0 = wasm_v128_load(br), g1 = wasm_v128_load(br + 4);
        v128_t s0 = wasm_v128_load32_splat(ar + j), s1 = wasm_v128_load32_splat(ar + j1);
        v128_t s2 = wasm_v128_load32_splat(ar + j2), s3 = wasm_v128_load32_splat(ar + j3);
        TILE_4X8_ADD(s0, s1, s2, s3, g0, g1)
      }
      wasm_v128_store(o0 + col, c00), wasm_v128_store(o0 + col + 4, c01);
      if (m > 1) wasm_v128_store(o1 + col, c10), wasm_v128_store(o1 + col + 4, c11);
      if (m > 2) wasm_v128_store(o2 + col, c20), wasm_v128_store(o2 + col + 4, c21);
      if (m > 3) wasm_v128_store(o3 + col, c30), wasm_v128_store(o3 + col + 4, c31);
    }
    for (int jj = j; jj < j + m; jj++)
      for (int col = n8; col < n; col++) {
        float s = out[(long)jj * n + col];
        for (int r = 0; r < rows; r++) s += a[(long)r * na + jj] * b[(long)r * n + col];
        out[(long)jj * n + col] = s;
      }
  }
}

/* Scratch floats attn_backward needs: K^T, V^T, and the block's scaled queries, weights w and scale * ds. */
static int backward_scratch(int p, int c) { return 2 * p * c + QB * c + 2 * QB * p; }

/*
 * Backward, QB queries at a time, with w recomputed: dw_j = <dy_i, v_j>, ds_j = w_j (dw_j - sum_j' w_j' dw_j'),
 * dq_i = scale * sum_j ds_j k_j, dk_j += scale * ds_j q_i, dv_j += w_j dy_i. The products are the blocked ones of
 * the forward pass and rows_t_times_add; every sum has the terms and order of the row-by-row loop.
 */
void attn_backward(const float *dy, const float *q, const float *k, const float *v, int n, int p, int c, float scale, float *dq, float *dk, float *dv, float *scratch) {
  float *kT = scratch;
  float *vT = kT + (long)p * c;
  float *qs = vT + (long)p * c;
  float *w = qs + (long)QB * c;
  float *ds = w + (long)QB * p;
  for (int e = 0; e < n; e++) {
    long off = (long)e * p * c;
    const float *qe = q + off, *ke = k + off, *dye = dy + off;
    float *dqe = dq + off, *dke = dk + off, *dve = dv + off;
    transpose(ke, p, c, kT);
    transpose(v + off, p, c, vT);
    for (long x = 0; x < (long)p * c; x++) dke[x] = dve[x] = 0;
    for (int i0 = 0; i0 < p; i0 += QB) {
      int rows = p - i0 < QB ? p - i0 : QB;
      const float *qb = qe + (long)i0 * c, *dyb = dye + (long)i0 * c;
      for (long x = 0; x < (long)rows * c; x++) qs[x] = qb[x] * scale;
      rows_times(qs, rows, kT, c, p, w, p);
      rows_times(dyb, rows, vT, c, p, ds, p);
      for (int r = 0; r < rows; r++) {
        float *wr = w + (long)r * p, *dr = ds + (long)r * p;
        softmax_inplace(wr, p);
        float dot = 0;
        for (int j = 0; j < p; j++) dot += wr[j] * dr[j];
        for (int j = 0; j < p; j++) dr[j] = wr[j] * (dr[j] - dot) * scale;
      }
      rows_times(ds, rows, ke, p, c, dqe + (long)i0 * c, c);
      rows_t_times_add(ds, rows, p, qb, c, dke);
      rows_t_times_add(w, rows, p, dyb, c, dve);
    }
  }
}
