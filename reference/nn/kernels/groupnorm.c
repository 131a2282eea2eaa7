/*
 * Group normalisation followed (optionally) by the swish, forward and backward, for the wasm backend: compiled
 * to a WebAssembly module with 128-bit SIMD that imports the tfjs-backend-wasm heap as its memory, so it reads
 * and writes tensors in place (see groupNormKernels.ts for the maths and tools/build-kernels.sh for the build).
 *
 * Rules that keep this module from touching memory it does not own: no static data, no stack (every buffer is
 * passed in by the caller, who allocates it on the tfjs heap), no C library.
 *
 * Layout: NHWC, x[(e*P + q)*C + k] for example e, position q < P = H*W, channel k; channel k is in group
 * k / (C/G). Sums are accumulated in double.
 */
#include "exp_approx.h"

/* Per (example, group) mean and 1/sqrt(var + eps), two passes. acc: C doubles of scratch. */
static void stats(const float *x, int n, int p, int c, int groups, float eps, double *acc, double *mean, double *rstd) {
  int cg = c / groups;
  double m = (double)p * cg;
  for (int e = 0; e < n; e++) {
    const float *xe = x + (long)e * p * c;
    for (int k = 0; k < c; k++) acc[k] = 0;
    for (int q = 0; q < p; q++)
      for (int k = 0; k < c; k++) acc[k] += xe[q * c + k];
    for (int g = 0; g < groups; g++) {
      double s = 0;
      for (int j = 0; j < cg; j++) s += acc[g * cg + j];
      mean[e * groups + g] = s / m;
    }
    /* acc[k] temporarily holds channel k's group mean as a float in the upper half of scratch */
    float *mu = (float *)(acc + c);
    for (int k = 0; k < c; k++) mu[k] = (float)mean[e * groups + k / cg];
    for (int k = 0; k < c; k++) acc[k] = 0;
    for (int q = 0; q < p; q++)
      for (int k = 0; k < c; k++) {
        float d = xe[q * c + k] - mu[k];
        acc[k] += (double)d * d;
      }
    for (int g = 0; g < groups; g++) {
      double s = 0;
      for (int j = 0; j < cg; j++) s += acc[g * cg + j];
      rstd[e * groups + g] = 1.0 / __builtin_sqrt(s / m + eps);
    }
  }
}

/* Scratch needed by both functions, in doubles: 2*C + 2*N*G + 4*C. */
int gn_scratch_doubles(int n, int c, int groups) { return 6 * c + 2 * n * groups; }

void gn_forward(const float *x, const float *gamma, const float *beta, int n, int p, int c, int groups, float eps, int swish, float *y, double *scratch) {
  double *acc = scratch;                 /* 2C (C doubles + C floats) */
  double *mean = scratch + 2 * c;        /* N*G */
  double *rstd = mean + n * groups;      /* N*G */
  float *scale = (float *)(rstd + n * groups); /* C floats */
  float *shift = scale + c;              /* C floats */
  int cg = c / groups;
  stats(x, n, p, c, groups, eps, acc, mean, rstd);
  for (int e = 0; e < n; e++) {
    for (int k = 0; k < c; k++) {
      double r = rstd[e * groups + k / cg];
      scale[k] = (float)(r * gamma[k]);
      shift[k] = (float)(beta[k] - mean[e * groups + k / cg] * r * gamma[k]);
    }
    const float *xe = x + (long)e * p * c;
    float *ye = y + (long)e * p * c;
    if (swish) {
      for (int q = 0; q < p; q++)
        for (int k = 0; k < c; k++) {
          float z = xe[q * c + k] * scale[k] + shift[k];
          ye[q * c + k] = z / (1.0f + exp_approx(-z));
        }
    } else {
      for (int q = 0; q < p; q++)
        for (int k = 0; k < c; k++) ye[q * c + k] = xe[q * c + k] * scale[k] + shift[k];
    }
  }
}

/* One example's first backward pass: dz, dxhat (into dx) and four per-channel float sums over its positions. */
static inline void backward_pass1(const float *__restrict__ xe, const float *__restrict__ dye, const float *__restrict__ gamma, const float *__restrict__ beta, const float *__restrict__ mu, const float *__restrict__ r, int p, int c, int swish,
                                  float *__restrict__ dxe, float *__restrict__ fdg, float *__restrict__ fdb, float *__restrict__ fsd, float *__restrict__ fsdx) {
  for (int k = 0; k < c; k++) fdg[k] = fdb[k] = fsd[k] = fsdx[k] = 0;
  if (swish) {
    for (int q = 0; q < p; q++)
      for (int k = 0; k < c; k++) {
        float xh = (xe[q * c + k] - mu[k]) * r[k];
        float z = gamma[k] * xh + beta[k];
        float s = 1.0f / (1.0f + exp_approx(-z));
        float dz = dye[q * c + k] * (s * (1.0f + z * (1.0f - s)));
        fdg[k] += dz * xh;
        fdb[k] += dz;
        float dxh = dz * gamma[k];
        dxe[q * c + k] = dxh;
        fsd[k] += dxh;
        fsdx[k] += dxh * xh;
      }
  } else {
    for (int q = 0; q < p; q++)
      for (int k = 0; k < c; k++) {
        float xh = (xe[q * c + k] - mu[k]) * r[k];
        float dz = dye[q * c + k];
        fdg[k] += dz * xh;
        fdb[k] += dz;
        float dxh = dz * gamma[k];
        dxe[q * c + k] = dxh;
        fsd[k] += dxh;
        fsdx[k] += dxh * xh;
      }
  }
}

/* Scratch (doubles): 2C for the statistics' accumulators, 2NG statistics, 2C parameter-gradient totals, 2C of
   floats (4C floats: per-example sums), within gn_scratch_doubles. */
void gn_backward(const float *dy, const float *x, const float *gamma, const float *beta, int n, int p, int c, int groups, float eps, int swish,
                 float *dx, float *dgamma, float *dbeta, double *scratch) {
  double *acc = scratch;
  double *mean = scratch + 2 * c;
  double *rstd = mean + n * groups;
  double *dg = rstd + n * groups;        /* C doubles */
  double *db = dg + c;                   /* C doubles */
  float *fdg = (float *)(db + c);        /* 4C floats = 2C doubles */
  float *fdb = fdg + c;
  float *fsd = fdb + c;
  float *fsdx = fsd + c;
  int cg = c / groups;
  double m = (double)p * cg;
  stats(x, n, p, c, groups, eps, acc, mean, rstd);
  float *mu = (float *)acc;              /* C floats */
  float *r = mu + c;                     /* C floats */
  float *a = (float *)(acc + c);         /* C floats: mean(dxhat) of the channel's group */
  float *b = a + c;                      /* C floats: mean(dxhat*xhat) of the channel's group */
  for (int k = 0; k < c; k++) dg[k] = db[k] = 0;
  for (int e = 0; e < n; e++) {
    for (int k = 0; k < c; k++) {
      mu[k] = (float)mean[e * groups + k / cg];
      r[k] = (float)rstd[e * groups + k / cg];
    }
    const float *xe = x + (long)e * p * c;
    const float *dye = dy + (long)e * p * c;
    float *dxe = dx + (long)e * p * c;
    backward_pass1(xe, dye, gamma, beta, mu, r, p, c, swish, dxe, fdg, fdb, fsd, fsdx);
    for (int k = 0; k < c; k++) {
      dg[k] += fdg[k];
      db[k] += fdb[k];
    }
    for (int g = 0; g < groups; g++) {
      double s1 = 0, s2 = 0;
      for (int j = 0; j < cg; j++) {
        s1 += fsd[g * cg + j];
        s2 += fsdx[g * cg + j];
      }
      for (int j = 0; j < cg; j++) {
        a[g * cg + j] = (float)(s1 / m);
        b[g * cg + j] = (float)(s2 / m);
      }
    }
    for (int q = 0; q < p; q++)
      for (int k = 0; k < c; k++) {
        float xh = (xe[q * c + k] - mu[k]) * r[k];
        dxe[q * c + k] = r[k] * (dxe[q * c + k] - a[k] - xh * b[k]);
      }
  }
  for (int k = 0; k < c; k++) {
    dgamma[k] = (float)dg[k];
    dbeta[k] = (float)db[k];
  }
}
