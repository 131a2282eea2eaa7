/*
 * e^v in float32 for the reference's WebAssembly kernels (groupnorm.c, attention.c): v is clamped to [-87, 87],
 * then e^v = 2^n * e^f with n = round(v / ln 2), |f| <= ln2/2, and e^f a degree-6 Taylor polynomial (relative
 * error below 2e-7 on that interval). No library call, so the loops that use it vectorise.
 */
#ifndef DDPM_EXP_APPROX_H
#define DDPM_EXP_APPROX_H
typedef unsigned int u32;

static inline float exp_approx(float v) {
  v = v < -87.0f ? -87.0f : (v > 87.0f ? 87.0f : v);
  float t = __builtin_floorf(v * 1.44269504088896341f + 0.5f);
  float f = v - t * 0.693145751953125f - t * 1.42860682030941723212e-6f;
  float p = 1.0f + f * (1.0f + f * (0.5f + f * (0.166666666666666667f + f * (0.0416666666666666667f + f * (0.00833333333333333333f + f * 0.00138888888888888889f)))));
  u32 bits = (u32)((int)t + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}
#endif
