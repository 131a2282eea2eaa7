/*
 * A 2-D convolution for the wasm backend, compiled to a WebAssembly module with 128-bit SIMD that imports the
 * tfjs-backend-wasm heap as its memory (see convKernel.ts for its use, tools/build-kernels.sh for the build).
 *
 * Rules that keep this module from touching memory it does not own: no static data, no stack (accumulators live
 * in locals; the packed filter and a row of zeros go into scratch the caller allocates), no C library.
 *
 * Layout: NHWC. x is [N, H, W, C], w is [Kh, Kw, C, O], y is [N, Ho, Wo, O]:
 *
 *   y[e, i, j, o] = sum over (a, b, c) of x[e, sh*i + a - top, sw*j + b - left, c] * w[a, b, c, o],
 *
 * x being zero outside the image. The filter is first packed into blocks of 8 output channels,
 * p[ob][a][b][c][8] (zero beyond O), so that the inner loop reads it contiguously. Then for each block of 8 output
 * channels and each run of 4 neighbouring output pixels of a row, 4 x 8 sums are accumulated in 8 SIMD registers
 * over every tap and input channel; a pixel whose tap falls outside the image reads the row of zeros instead.
 */
#include <wasm_simd128.h>

/* Floats of scratch conv2d_forward needs: the row of zeros and the packed filter. */
int conv2d_scratch_floats(int cin, int cout, int kh, int kw) {
  int ob = (cout + 7) / 8;
  return cin + ob * kh * kw * cin * 8;
}

void conv2d_forward(const float *x, const float *w, float *y, int n, int h, int wd, int cin, int ho, int wo, int cout, int kh, int kw, int sh, int sw,
                    int top, int left, float *scratch) {
  float *zeros = scratch;
  float *packed = scratch + cin;
  int taps = kh * kw;
  int blocks = (cout + 7) / 8;
  for (int c = 0; c < cin; c++) zeros[c] = 0;
  for (int ob = 0; ob < blocks; ob++)
    for (int t = 0; t < taps; t++)
      for (int c = 0; c < cin; c++) {
        float *dst = packed + (((long)ob * taps + t) * cin + c) * 8;
        const float *src = w + ((long)t * cin + c) * cout + ob * 8;
        for (int k = 0; k < 8; k++) dst[k] = ob * 8 + k < cout ? src[k] : 0.0f;
      }
  /* Output rows in chunks whose input rows (about 96 KB) stay in cache while every block of output channels reads them. */
  int rows = n * ho;
  int row_floats = sh * wd * cin;
  int chunk = row_floats > 0 ? 24576 / row_floats : rows;
  if (chunk < 1) chunk = 1;
  for (int r0 = 0; r0 < rows; r0 += chunk) {
  int r1 = r0 + chunk < rows ? r0 + chunk : rows;
  for (int ob = 0; ob < blocks; ob++) {
    int o0 = ob * 8;
    int width = cout - o0 < 8 ? cout - o0 : 8;
    for (int rr = r0; rr < r1; rr++) {
      int e = rr / ho, i = rr - e * ho;
        for (int j0 = 0; j0 < wo; j0 += 4) {
          v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
          for (int a = 0; a < kh; a++) {
            int yy = sh * i + a - top;
            if (yy < 0 || yy >= h) continue;
            const float *row = x + (long)(e * h + yy) * wd * cin;
            for (int b = 0; b < kw; b++) {
              const float *p0, *p1, *p2, *p3;
              int col = sw * j0 + b - left;
#define PIXEL(P, K) P = (j0 + K < wo && col + sw * K >= 0 && col + sw * K < wd) ? row + (long)(col + sw * K) * cin : zeros;
              PIXEL(p0, 0) PIXEL(p1, 1) PIXEL(p2, 2) PIXEL(p3, 3)
#undef PIXEL
              const float *wp = packed + (((long)ob * taps + a * kw + b) * cin) * 8;
              for (int c = 0; c < cin; c++, wp += 8) {
                v128_t g0 = wasm_v128_load(wp), g1 = wasm_v128_load(wp + 4);
                v128_t s0 = wasm_v128_load32_splat(p0 + c), s1 = wasm_v128_load32_splat(p1 + c);
                v128_t s2 = wasm_v128_load32_splat(p2 + c), s3 = wasm_v128_load32_splat(p3 + c);
                a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(s0, g0));
                a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(s0, g1));
                a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(s1, g0));
                a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(s1, g1));
                a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(s2, g0));
                a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(s2, g1));
                a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(s3, g0));
                a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(s3, g1));
              }
            }
          }
          float *out = y + ((long)(e * ho + i) * wo + j0) * cout + o0;
          /* Lanes cannot be indexed by a variable without a stack copy: store partial blocks lane by lane. */
#define LANES(Q, A0, A1)                                                                                        \
  {                                                                                                           \
    float *q = (Q);                                                                                           \
    if (width == 8) {                                                                                         \
      wasm_v128_store(q, A0), wasm_v128_store(q + 4, A1);                                                     \
    } else {                                                                                                  \
      if (width > 0) q[0] = wasm_f32x4_extract_lane(A0, 0);                                                   \
      if (width > 1) q[1] = wasm_f32x4_extract_lane(A0, 1);                                                   \
      if (width > 2) q[2] = wasm_f32x4_extract_lane(A0, 2);                                                   \
      if (width > 3) q[3] = wasm_f32x4_extract_lane(A0, 3);                                                   \
      if (width > 4) q[4] = wasm_f32x4_extract_lane(A1, 0);                                                   \
      if (width > 5) q[5] = wasm_f32x4_extract_lane(A1, 1);                                                   \
      if (width > 6) q[6] = wasm_f32x4_extract_lane(A1, 2);                                                   \
    }                                                                                                         \
  }
          LANES(out, a00, a01)
          if (j0 + 1 < wo) LANES(out + cout, a10, a11)
          if (j0 + 2 < wo) LANES(out + 2 * (long)cout, a20, a21)
          if (j0 + 3 < wo) LANES(out + 3 * (long)cout, a30, a31)
#undef LANES
        }
    }
  }
  }
}
