/*
 * The filter gradient of a 2-D convolution for the wasm backend, compiled to a WebAssembly module with 128-bit
 * SIMD that imports the tfjs-backend-wasm heap as its memory (see convFilterGradKernel.ts for the maths and its
 * use, tools/build-kernels.sh for the build).
 *
 * Rules that keep this module from touching memory it does not own: no static data, no stack (accumulators live
 * in locals), no C library.
 *
 * Layout: NHWC. x is [N, H, W, C], dy is [N, Ho, Wo, O], dw is [Kh, Kw, C, O]:
 *
 *   dw[a, b, c, o] = sum over (e, i, j) of x[e, sh*i + a - top, sw*j + b - left, c] * dy[e, i, j, o],
 *
 * x being zero outside the image. For one kernel position (a, b) this is the matrix product X_ab^T . DY over the
 * Ho*Wo*N output pixels, X_ab being x shifted by (a - top, b - left) and read with stride (sh, sw). The pixels are
 * taken in tiles of whole output rows (about TILE_PIXELS pixels, so a tile of x and dy stays in cache while every
 * (a, b) and every channel block reads it); within a tile a block of 4 input channels by 8 output channels is
 * accumulated in 8 SIMD registers over all its pixels, then added into dw.
 */
#include <wasm_simd128.h>

#define TILE_PIXELS 256

/* The pixels of one tile for one kernel position: rows [r0, r1) of the N*Ho output rows, columns [jlo, jhi]. */
#define ROWS_BEGIN                                                                                            \
  for (int rr = r0; rr < r1; rr++) {                                                                         \
    int e = rr / ho, i = rr - e * ho;                                                                        \
    int y = sh * i + a - top;                                                                                \
    if (y < 0 || y >= h) continue;                                                                           \
    const float *xp = x + ((long)(e * h + y) * w + (sw * jlo + b - left)) * cin + c;                         \
    const float *dp = dy + ((long)rr * wo + jlo) * cout + o;
#define ROWS_END }

/* 4 input channels x 8 output channels. */
static inline __attribute__((always_inline)) void block4x8(const float *x, const float *dy, float *d, int r0, int r1, int a, int b, int c, int o,
                                                           int h, int w, int cin, int ho, int wo, int cout, int sh, int sw, int top, int left, int jlo, int len) {
  float *d0 = d + (long)c * cout + o, *d1 = d0 + cout, *d2 = d1 + cout, *d3 = d2 + cout;
  v128_t a00 = wasm_v128_load(d0), a01 = wasm_v128_load(d0 + 4);
  v128_t a10 = wasm_v128_load(d1), a11 = wasm_v128_load(d1 + 4);
  v128_t a20 = wasm_v128_load(d2), a21 = wasm_v128_load(d2 + 4);
  v128_t a30 = wasm_v128_load(d3), a31 = wasm_v128_load(d3 + 4);
  int xs = sw * cin;
  ROWS_BEGIN
  for (int j = 0; j < len; j++, xp += xs, dp += cout) {
    v128_t g0 = wasm_v128_load(dp), g1 = wasm_v128_load(dp + 4);
    v128_t s0 = wasm_v128_load32_splat(xp), s1 = wasm_v128_load32_splat(xp + 1);
    v128_t s2 = wasm_v128_load32_splat(xp + 2), s3 = wasm_v128_load32_splat(xp + 3);
    a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(s0, g0));
    a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(s0, g1));
    a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(s1, g0));
    a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(s1, g1));
    a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(s2, g0));
    a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(s2, g1));
    a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(s3, g0));
    a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(s3, g1));
  }
  ROWS_END
  wasm_v128_store(d0, a00), wasm_v128_store(d0 + 4, a01);
  wasm_v128_store(d1, a10), wasm_v128_store(d1 + 4, a11);
  wasm_v128_store(d2, a20), wasm_v128_store(d2 + 4, a21);
  wasm_v128_store(d3, a30), wasm_v128_store(d3 + 4, a31);
}

/* 1 input channel x 4 output channels (the remainders of the 4 x 8 blocks whose width is a multiple of 4). */
static inline __attribute__((always_inline)) void block1x4(const float *x, const float *dy, float *d, int r0, int r1, int a, int b, int c, int o,
                                                           int h, int w, int cin, int ho, int wo, int cout, int sh, int sw, int top, int left, int jlo, int len) {
  float *d0 = d + (long)c * cout + o;
  v128_t a00 = wasm_v128_load(d0);
  int xs = sw * cin;
  ROWS_BEGIN
  for (int j = 0; j < len; j++, xp += xs, dp += cout) a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(wasm_v128_load32_splat(xp), wasm_v128_load(dp)));
  ROWS_END
  wasm_v128_store(d0, a00);
}

/* 1 input channel x 1 output channel (output counts that are not a multiple of 4, e.g. the UNet's last layer). */
static inline __attribute__((always_inline)) void block1x1(const float *x, const float *dy, float *d, int r0, int r1, int a, int b, int c, int o,
                                                           int h, int w, int cin, int ho, int wo, int cout, int sh, int sw, int top, int left, int jlo, int len) {
  float *d0 = d + (long)c * cout + o;
  float s = *d0;
  int xs = sw * cin;
  ROWS_BEGIN
  for (int j = 0; j < len; j++, xp += xs, dp += cout) s += *xp * *dp;
  ROWS_END
  *d0 = s;
}

/*
 * dw (kh*kw*cin*cout floats, overwritten) of the convolution of x [n, h, w, cin] giving dy [n, ho, wo, cout] with
 * strides (sh, sw), padding top/left before the image (any padding after it is implied by ho, wo).
 */
void conv2d_filter_grad(const float *x, const float *dy, float *dw, int n, int h, int w, int cin, int ho, int wo, int cout, int kh, int kw, int sh, int sw,
                        int top, int left) {
  long total = (long)kh * kw * cin * cout;
  for (long q = 0; q < total; q++) dw[q] = 0;
  int rows = n * ho;
  int tile = wo > 0 ? TILE_PIXELS / wo : 1;
  if (tile < 1) tile = 1;
  int c4 = cin - cin % 4, o8 = cout - cout % 8, o4 = cout - cout % 4;
  for (int r0 = 0; r0 < rows; r0 += tile) {
    int r1 = r0 + tile < rows ? r0 + tile : rows;
    for (int a = 0; a < kh; a++) {
      for (int b = 0; b < kw; b++) {
        /* Output columns j whose input column sw*j + b - left lies in [0, w). */
        int jlo = 0;
        while (jlo < wo && sw * jlo + b - left < 0) jlo++;
        int jhi = wo - 1;
        while (jhi >= jlo && sw * jhi + b - left >= w) jhi--;
        int len = jhi - jlo + 1;
        if (len <= 0) continue;
        float *d = dw + (long)(a * kw + b) * cin * cout;
        int c = 0;
        for (; c < c4; c += 4) {
          int o = 0;
          for (; o < o8; o += 8) block4x8(x, dy, d, r0, r1, a, b, c, o, h, w, cin, ho, wo, cout, sh, sw, top, left, jlo, len);
          for (; o < o4; o += 4)
            for (int cc = c; cc < c + 4; cc++) block1x4(x, dy, d, r0, r1, a, b, cc, o, h, w, cin, ho, wo, cout, sh, sw, top, left, jlo, len);
          for (; o < cout; o++)
            for (int cc = c; cc < c + 4; cc++) block1x1(x, dy, d, r0, r1, a, b, cc, o, h, w, cin, ho, wo, cout, sh, sw, top, left, jlo, len);
        }
        for (; c < cin; c++) {
          int o = 0;
          for (; o < o4; o += 4) block1x4(x, dy, d, r0, r1, a, b, c, o, h, w, cin, ho, wo, cout, sh, sw, top, left, jlo, len);
          for (; o < cout; o++) block1x1(x, dy, d, r0, r1, a, b, c, o, h, w, cin, ho, wo, cout, sh, sw, top, left, jlo, len);
        }
      }
    }
  }
}
