/**
 * Deterministic input sets for the math routines: edge cases, a dense sweep of each routine's
 * useful range, log-uniform magnitudes and random f32 bit patterns, from a fixed seed. The
 * accuracy test, accuracy.ts and the cross-runtime hash all use these, so they talk about
 * the same inputs.
 */

export interface SweepDomain {
  /** Dense linear sweep range. */
  lo: number;
  hi: number;
  /** Extra inputs that matter to this routine. */
  edges?: number[];
  /** Only non-negative random inputs (sqrt, rsqrt, log: the negative half is all NaN). */
  positive?: boolean;
}

const MIN_NORMAL = 2 ** -126;
const FLT_MAX = 3.4028234663852886e38;

export const COMMON_EDGES: readonly number[] = [
  0, -0, 1, -1, 0.5, -0.5, 2, -2, Infinity, -Infinity, NaN, MIN_NORMAL, -MIN_NORMAL, 2 ** -149, -(2 ** -149),
  1e-40, -1e-40, MIN_NORMAL * (1 - 2 ** -23), FLT_MAX, -FLT_MAX, 2 ** -24, -(2 ** -24), 2 ** -60, 1e-30, 3, 10, 100, -100,
  1e10, -1e10, 2 ** 24, 2 ** 60,
];

/**
 * The f32 inputs in [pi/4, 196608] closest to a multiple of pi/2 (|x - k pi/2| down to
 * 2^-27.8, found by exhaustive search): the hardest cases for sin/cos range reduction.
 */
const TRIG_HARD = [
  252.89820861816406, 505.7964172363281, 4.71238899230957, 52516.43359375, 1011.5928344726562, 9.42477798461914,
  105032.8671875, 2023.1856689453125, 14.137166976928711, 1.5707963705062866, 18.84955596923828, 2238.384765625,
  23.56194496154785, 4046.371337890625, 28.274333953857422, 1.570796251296997, 3.1415927410125732, 215.1990966796875,
  37.69911193847656, 56993.203125, 290.5973205566406, 796.3937377929688, 4476.76953125, 47.1238899230957,
];
const TRIG_EDGES = [
  ...TRIG_HARD, ...TRIG_HARD.map((x) => -x), Math.PI / 4, 65536, -65536, 131072, 196608, -196608, 196608.015625, 2 ** 22, 1e-20,
];

export const DOMAINS: Record<string, SweepDomain> = {
  exp: { lo: -90, hi: 90, edges: [88.72283172607422, 88.72283935546875, 88.75, 89, -87.33654022216797, -87.33655548095703, -88, -103.97, -104, 1e-8, -1e-8] },
  log: { lo: 0, hi: 4, positive: true, edges: [1 - 2 ** -24, 1 + 2 ** -23, 0.70710677, 1.4142135, Math.E, 0.5, 1e-38, 1e38] },
  tanh: { lo: -10, hi: 10, edges: [9, 9.1, 0.55, -0.55, 1e-5, 20, -20] },
  sigmoid: { lo: -90, hi: 30, edges: [-87.3, -87.4, -88, -88.8, -89, -104, 16, 17, 18, 20] },
  softplus: { lo: -90, hi: 40, edges: [-87.3, -87.4, -88, 16, 17, 20, 32, 88, 89, 100] },
  erf: { lo: -5, hi: 5, edges: [0.84375, 1.25, 3.9, 3.92, 4, -4] },
  erfc: { lo: -5, hi: 11, edges: [0.84375, 1.25, 9.19, 9.2, 9.3, 10.05, 26, 27] },
  gelu: { lo: -15, hi: 10, edges: [-13, -13.1, -13.2, -13.3, -14, -5, -3] },
  sin: { lo: -196608, hi: 196608, edges: TRIG_EDGES },
  cos: { lo: -196608, hi: 196608, edges: TRIG_EDGES },
  sqrt: { lo: 0, hi: 4, positive: true, edges: [4, 9, 2, 0.25, FLT_MAX] },
  rsqrt: { lo: 0, hi: 4, positive: true, edges: [4, 9, 2, 0.25, FLT_MAX] },
  div: { lo: -4, hi: 4 },
};

/** splitmix32: tiny, integer-only, identical on every engine. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function nameSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * `count` inputs for a unary routine: edges, then 30% dense over [lo, hi], 30% log-uniform
 * magnitudes (2^-30 .. max(|lo|, |hi|)), 40% random bit patterns (all classes included).
 */
export function unaryInputs(name: string, count: number, seed = 1): Float32Array {
  const d = DOMAINS[name];
  if (!d) throw new Error(`no sweep domain for ${name}`);
  const out = new Float32Array(count);
  const u = new Uint32Array(out.buffer);
  const next = rng(seed ^ nameSeed(name));
  let i = 0;
  for (const e of [...COMMON_EDGES, ...(d.edges ?? [])]) {
    if (i < count) out[i++] = e;
  }
  const rest = count - i;
  const nDense = Math.floor(rest * 0.3);
  for (let j = 0; j < nDense; j++) out[i++] = d.lo + ((d.hi - d.lo) * j) / Math.max(1, nDense - 1);
  const nLog = Math.floor(rest * 0.3);
  const maxE = Math.log2(Math.max(Math.abs(d.lo), Math.abs(d.hi)));
  for (let j = 0; j < nLog; j++) {
    const r = next() / 4294967296;
    const v = 2 ** (-30 + (maxE + 30) * r);
    const neg = !d.positive && (next() & 1) === 1;
    out[i++] = neg ? -v : v;
  }
  while (i < count) {
    const bits = next();
    u[i++] = d.positive ? bits & 0x7fffffff : bits;
  }
  return out;
}

/** Pairs for binary routines (div): edges x edges, moderate values, and random bit patterns. */
export function binaryInputs(name: string, count: number, seed = 1): [Float32Array, Float32Array] {
  const a = new Float32Array(count);
  const b = new Float32Array(count);
  const ua = new Uint32Array(a.buffer);
  const ub = new Uint32Array(b.buffer);
  const next = rng(seed ^ nameSeed(name));
  let i = 0;
  for (const x of COMMON_EDGES) {
    for (const y of COMMON_EDGES) {
      if (i < count) {
        a[i] = x;
        b[i] = y;
        i++;
      }
    }
  }
  const rest = count - i;
  // Moderate: mantissas random, exponents within +-4 (the common case in kernels).
  const nMod = Math.floor(rest * 0.4);
  for (let j = 0; j < nMod; j++, i++) {
    ua[i] = (next() & 0x807fffff) | ((127 - 4 + (next() % 9)) << 23);
    ub[i] = (next() & 0x807fffff) | ((127 - 4 + (next() % 9)) << 23);
  }
  // Near underflow / overflow of the quotient: exponent difference close to -126 or +127.
  const nEdge = Math.floor(rest * 0.2);
  for (let j = 0; j < nEdge; j++, i++) {
    const ea = 1 + (next() % 40);
    const low = (next() & 1) === 0;
    const eb = low ? Math.min(254, ea + 124 + (next() % 6)) : ea;
    ua[i] = (next() & 0x807fffff) | ((low ? ea : 254 - (next() % 3)) << 23);
    ub[i] = (next() & 0x807fffff) | ((low ? eb : 1 + (next() % 4)) << 23);
  }
  while (i < count) {
    ua[i] = next();
    ub[i] = next();
    i++;
  }
  return [a, b];
}
