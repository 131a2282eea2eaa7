/**
 * Float64 forward passes of the tensor operations whose gradients `reference/grad` replaces, written
 * directly from their definitions (TensorFlow's padding rules included), and central finite differences.
 * Test support only: these are the independent witnesses the float32 gradients are checked against.
 */

/** A float64 tensor: row-major data and its shape. */
export interface T64 {
  shape: number[];
  data: Float64Array;
}

export function t64(shape: number[], data: ArrayLike<number>): T64 {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`t64: shape [${shape}] needs ${n} values, got ${data.length}`);
  return { shape, data: Float64Array.from(data) };
}

/** Padding as TensorFlow defines it for one spatial axis. */
export function tfPadding(size: number, k: number, s: number, pad: 'same' | 'valid' | [number, number]): { out: number; before: number } {
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const along = Math.max(0, (out - 1) * s + k - size);
    return { out, before: Math.floor(along / 2) };
  }
  if (pad === 'valid') return { out: Math.ceil((size - k + 1) / s), before: 0 };
  return { out: Math.floor((size + pad[0] + pad[1] - k) / s) + 1, before: pad[0] };
}

/** y = conv2d(x, w): x [N,H,W,C], w [kh,kw,C,O], NHWC, zero padding. */
export function conv2d64(
  x: T64,
  w: T64,
  strides: [number, number],
  pad: 'same' | 'valid' | [[number, number], [number, number]],
): T64 {
  const [n, h, wd, c] = x.shape;
  const [kh, kw, c2, o] = w.shape;
  if (c !== c2) throw new Error('conv2d64: channel mismatch');
  const ph = tfPadding(h, kh, strides[0], pad === 'same' || pad === 'valid' ? pad : pad[0]);
  const pw = tfPadding(wd, kw, strides[1], pad === 'same' || pad === 'valid' ? pad : pad[1]);
  const out = new Float64Array(n * ph.out * pw.out * o);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < ph.out; i++)
      for (let j = 0; j < pw.out; j++)
        for (let oc = 0; oc < o; oc++) {
          let s = 0;
          for (let a = 0; a < kh; a++) {
            const r = strides[0] * i + a - ph.before;
            if (r < 0 || r >= h) continue;
            for (let bb = 0; bb < kw; bb++) {
              const q = strides[1] * j + bb - pw.before;
              if (q < 0 || q >= wd) continue;
              for (let ic = 0; ic < c; ic++) s += x.data[((b * h + r) * wd + q) * c + ic] * w.data[((a * kw + bb) * c + ic) * o + oc];
            }
          }
          out[((b * ph.out + i) * pw.out + j) * o + oc] = s;
        }
  return { shape: [n, ph.out, pw.out, o], data: out };
}

/** C = op(A)·op(B) for rank-3 A, B with batch broadcasting (batch 1 broadcasts). */
export function matMul64(a: T64, b: T64, transposeA: boolean, transposeB: boolean): T64 {
  const [ba, ra, ca] = a.shape;
  const [bb, rb, cb] = b.shape;
  const [m, k] = transposeA ? [ca, ra] : [ra, ca];
  const [k2, n] = transposeB ? [cb, rb] : [rb, cb];
  if (k !== k2) throw new Error('matMul64: inner dimensions differ');
  const batch = Math.max(ba, bb);
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const ta = ba === 1 ? 0 : t;
    const tb = bb === 1 ? 0 : t;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let l = 0; l < k; l++) {
          const av = transposeA ? a.data[(ta * ra + l) * ca + i] : a.data[(ta * ra + i) * ca + l];
          const bv = transposeB ? b.data[(tb * rb + j) * cb + l] : b.data[(tb * rb + l) * cb + j];
          s += av * bv;
        }
        out[(t * m + i) * n + j] = s;
      }
  }
  return { shape: [batch, m, n], data: out };
}

/** Nearest-neighbour resize [N,H,W,C] → [N,oh,ow,C] without corner alignment (TensorFlow's rule). */
export function resizeNearest64(x: T64, oh: number, ow: number, halfPixelCenters: boolean): T64 {
  const [n, h, w, c] = x.shape;
  const src = (dst: number, inSize: number, outSize: number): number => {
    const scale = inSize / outSize;
    const f = halfPixelCenters ? Math.floor((dst + 0.5) * scale) : Math.floor(dst * scale);
    return Math.min(inSize - 1, f);
  };
  const out = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < c; k++) out[((b * oh + i) * ow + j) * c + k] = x.data[((b * h + src(i, h, oh)) * w + src(j, w, ow)) * c + k];
  return { shape: [n, oh, ow, c], data: out };
}

/** Σ r ⊙ y: a scalar loss whose gradient with respect to y is r. */
export function dot64(y: T64, r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.data.length; i++) s += y.data[i] * r[i];
  return s;
}

/**
 * Central finite differences of a scalar function of several float64 tensors, with respect to every
 * element of every input: (f(θ + h e_i) − f(θ − h e_i)) / 2h.
 */
export function finiteDiff(f: (inputs: T64[]) => number, inputs: T64[], h = 1e-4): Float64Array[] {
  return inputs.map((inp) => {
    const g = new Float64Array(inp.data.length);
    for (let i = 0; i < inp.data.length; i++) {
      const keep = inp.data[i];
      inp.data[i] = keep + h;
      const up = f(inputs);
      inp.data[i] = keep - h;
      const down = f(inputs);
      inp.data[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}

/** Average pooling, NHWC, `valid` padding, window fh × fw, stride s, in float64. */
export function avgPool64(x: T64, fh: number, fw: number, s: number): T64 {
  const [n, h, w, c] = x.shape;
  const oh = Math.floor((h - fh) / s) + 1;
  const ow = Math.floor((w - fw) / s) + 1;
  const out = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < c; k++) {
          let sum = 0;
          for (let a = 0; a < fh; a++) for (let d = 0; d < fw; d++) sum += x.data[((b * h + i * s + a) * w + j * s + d) * c + k];
          out[((b * oh + i) * ow + j) * c + k] = sum / (fh * fw);
        }
  return { shape: [n, oh, ow, c], data: out };
}

/**
 * swish(GroupNorm(x)) (or GroupNorm(x) alone) in float64, NHWC, straight from the definition: each example's
 * group of C/G consecutive channels is normalised over its positions and channels (biased variance), then
 * scaled and shifted per channel; swish(z) = z / (1 + e^(−z)).
 */
export function groupNormSwish64(x: T64, gamma: T64, beta: T64, groups: number, eps: number, swish: boolean): T64 {
  const c = x.shape[3];
  const { mean, std } = groupMoments64(x, groups, eps);
  const out = Float64Array.from(x.data, (v, i) => {
    const z = (gamma.data[i % c] * (v - mean[i])) / std[i] + beta.data[i % c];
    return swish ? z / (1 + Math.exp(-z)) : z;
  });
  return { shape: x.shape.slice(), data: out };
}

/** Per element of x (NHWC): the mean and √(σ² + ε) of its example's group of C/G channels, in float64. */
export function groupMoments64(x: T64, groups: number, eps: number): { mean: Float64Array; std: Float64Array } {
  const [n, h, w, c] = x.shape;
  const cg = c / groups;
  const mean = new Float64Array(x.data.length);
  const std = new Float64Array(x.data.length);
  for (let e = 0; e < n; e++)
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let p = 0; p < h * w; p++) for (let j = 0; j < cg; j++) idx.push((e * h * w + p) * c + g * cg + j);
      const mu = idx.reduce((s, i) => s + x.data[i], 0) / idx.length;
      const sd = Math.sqrt(idx.reduce((s, i) => s + (x.data[i] - mu) ** 2, 0) / idx.length + eps);
      for (const i of idx) {
        mean[i] = mu;
        std[i] = sd;
      }
    }
  return { mean, std };
}

/** Single-head attention in float64: o_i = Σ_j softmax_j(α⟨q_i, k_j⟩) v_j per example; q, k, v [N, P, C]. */
export function attention64(q: T64, k: T64, v: T64, scale: number): T64 {
  const [n, p, c] = q.shape;
  const out = new Float64Array(n * p * c);
  for (let e = 0; e < n; e++)
    for (let i = 0; i < p; i++) {
      const s = Array.from({ length: p }, (_, j) => {
        let d = 0;
        for (let ch = 0; ch < c; ch++) d += q.data[(e * p + i) * c + ch] * k.data[(e * p + j) * c + ch];
        return scale * d;
      });
      const m = Math.max(...s);
      const w = s.map((x) => Math.exp(x - m));
      const z = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j < p; j++) for (let ch = 0; ch < c; ch++) out[(e * p + i) * c + ch] += (w[j] / z) * v.data[(e * p + j) * c + ch];
    }
  return { shape: q.shape.slice(), data: out };
}
