/*
 * Single-head scaled dot-product attention, forward and backward, for the wasm backend: compiled to a
 * WebAssembly module with 128-bit SIMD that imports the tfjs-backend-wasm heap as its memory (see
 * attentionKernels.ts for the maths and tools/build-kernels.sh for the build). Same rules as groupnorm.c: no
 * static data, no stack, no C library; every buffer is passed in.
 *
 * Layout: q, k, v, o [N, P, C] row-major. For example e, row i: s_j = scale * <q_i, k_j>, w = softmax(s),
 * o_i = sum_j w_j v_j. Inner loops run over contiguous memory (K and V are transposed into scratch first) so that
 * they vectorise without reordering any sum.
 */
#include "exp_approx.h"

/* y[0..n) += a * x[0..n) */
static inline void axpy(float *__restrict__ y, const float *__restrict__ x, float a, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* dst[c*P + j] = src[j*C + c] */
static void transpose(const float *__restrict__ src, int p, int c, float *__restrict__ dst) {
  for (int j = 0; j < p; j++)
    for (int ch = 0; ch < c; ch++) dst[ch * p + j] = src[j * c + ch];
}

/* w[0..P) = softmax_j(scale * <q_i, k_j>), with kT = K transposed [C, P]. */
static void softmax_row(const float *__restrict__ qi, const float *__restrict__ kT, int p, int c, float scale, float *__restrict__ w) {
  for (int j = 0; j < p; j++) w[j] = 0;
  for (int ch = 0; ch < c; ch++) axpy(w, kT + ch * p, qi[ch] * scale, p);
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

/* Scratch floats needed by both functions. */
int attn_scratch_floats(int p, int c) { return 2 * p * c + 3 * p; }

void attn_forward(const float *q, const float *k, const float *v, int n, int p, int c, float scale, float *o, float *scratch) {
  float *kT = scratch;
  float *w = scratch + 2 * p * c;
  for (int e = 0; e < n; e++) {
    const float *qe = q + (long)e * p * c;
    const float *ve = v + (long)e * p * c;
    float *oe = o + (long)e * p * c;
    transpose(k + (long)e * p * c, p, c, kT);
    for (int i = 0; i < p; i++) {
      softmax_row(qe + i * c, kT, p, c, scale, w);
      float *oi = oe + i * c;
      for (int ch = 0; ch < c; ch++) oi[ch] = 0;
      for (int j = 0; j < p; j++) axpy(oi, ve + j * c, w[j], c);
    }
  }
}

/*
 * Backward, row by row with w recomputed: dw_j = <dy_i, v_j>, ds_j = w_j (dw_j - sum_j' w_j' dw_j'),
 * dq_i = scale * sum_j ds_j k_j, dk_j += scale * ds_j q_i, dv_j += w_j dy_i.
 */
void attn_backward(const float *dy, const float *q, const float *k, const float *v, int n, int p, int c, float scale, float *dq, float *dk, float *dv, float *scratch) {
  float *kT = scratch;
  float *vT = scratch + p * c;
  float *w = scratch + 2 * p * c;
  float *dw = w + p;
  for (int e = 0; e < n; e++) {
    long off = (long)e * p * c;
    const float *qe = q + off, *ke = k + off, *dye = dy + off;
    float *dqe = dq + off, *dke = dk + off, *dve = dv + off;
    transpose(ke, p, c, kT);
    transpose(v + off, p, c, vT);
    for (int x = 0; x < p * c; x++) dke[x] = dve[x] = 0;
    for (int i = 0; i < p; i++) {
      const float *qi = qe + i * c;
      const float *dyi = dye + i * c;
      softmax_row(qi, kT, p, c, scale, w);
      for (int j = 0; j < p; j++) dw[j] = 0;
      for (int ch = 0; ch < c; ch++) axpy(dw, vT + ch * p, dyi[ch], p);
      float dot = 0;
      for (int j = 0; j < p; j++) dot += w[j] * dw[j];
      for (int j = 0; j < p; j++) dw[j] = w[j] * (dw[j] - dot) * scale; /* dw now holds scale * ds */
      float *dqi = dqe + i * c;
      for (int ch = 0; ch < c; ch++) dqi[ch] = 0;
      for (int j = 0; j < p; j++) {
        axpy(dqi, ke + j * c, dw[j], c);
        axpy(dke + j * c, qi, dw[j], c);
        axpy(dve + j * c, dyi, w[j], c);
      }
    }
  }
}
