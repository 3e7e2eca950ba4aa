/**
 * Gradient check for any Heddle network or single layer.
 *
 * Method: L = sum(r * y) for a fixed random r (f32 values in [-1, 1]), so dL/dy = r. The
 * analytic gradients come from one Network.forwardTape + backward(r). The numeric ones are
 * central finite differences of the *f32* network, with L accumulated in float64 from the f32
 * outputs: each checked coordinate v (an input element or a parameter element) is set to
 * f32(v + h) and f32(v - h), the real f32 step (not 2h) is the denominator, and v is restored.
 *
 * Why not a float64 reference forward per layer: it would have to be written and trusted
 * for every layer; the f32 network is the thing under test, and with h ~ 1e-2 its rounding
 * noise (~1e-7 relative in L) is far below the tolerance. The per-layer forward tests compare
 * forwards against float64 formulas separately.
 *
 * Pass rule per coordinate: |analytic - central| <= atol + rtol * max(|analytic|, |central|).
 * Kinks (relu at 0, a max switching rows...) within h of v make the central difference
 * meaningless; such a coordinate is detected by its one-sided slopes disagreeing and is
 * retried with h/4 and h/16. If it still fails, it is accepted as "kinked" only if the
 * analytic value lies between the two one-sided slopes of the last try (widened by the
 * tolerance); otherwise it is a failure. A coordinate whose one-sided slopes agree but whose
 * central difference misses the analytic value fails at once. If more than
 * `maxKinkedFraction` of the coordinates are kinked, the check fails.
 */
import { Network } from '../../core/network.ts';
import { Prng } from '../../core/prng.ts';
import { Tensor } from '../../core/tensor.ts';
import type { JsonObject } from '../../core/fields.ts';

export interface GradcheckOptions {
  /** Seed for the network's weights, the input and r. Default 0. */
  seed?: number;
  /** Batch size when no input is given. Default 2. */
  batch?: number;
  /** Explicit input [batch, ...inputShape]; default uniform in `inputRange`. */
  input?: Tensor;
  inputRange?: [number, number];
  /** Finite-difference step. Default 1e-2. */
  h?: number;
  rtol?: number;
  atol?: number;
  /** At most this many coordinates per tensor (a seeded random subset). Default 48. */
  maxPerTensor?: number;
  maxKinkedFraction?: number;
  /** Check parameter gradients too. Default true. */
  params?: boolean;
  /** Network build seed when `net` is a config (defaults to `seed`). */
  buildSeed?: number;
  /** Overwrite every parameter with uniform values in this range first (e.g. norm gains that start at 1). */
  randomizeParams?: [number, number];
}

export interface GradcheckFailure {
  tensor: string;
  index: number;
  analytic: number;
  numeric: number;
  plus: number;
  minus: number;
}

export interface GradcheckResult {
  ok: boolean;
  checked: number;
  kinked: number;
  failures: GradcheckFailure[];
  /** Largest |analytic - numeric| / (atol + rtol * max(|a|, |n|)) over passing central checks. */
  worstRatio: number;
  report(): string;
}

/** A one-layer network config for a layer config and a per-sample input shape. */
export function layerNet(layer: JsonObject, inputShape: readonly number[]): JsonObject {
  return { input_shape: [...inputShape], layers: [layer] };
}

export function gradcheck(net: Network | unknown, opts: GradcheckOptions = {}): GradcheckResult {
  const seed = opts.seed ?? 0;
  const network = net instanceof Network ? net : Network.fromJSON(net, { seed: opts.buildSeed ?? seed });
  const h = opts.h ?? 1e-2;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const maxPer = opts.maxPerTensor ?? 48;
  const rng = new Prng(seed).fork('gradcheck');
  const input = opts.input ?? randomTensor([opts.batch ?? 2, ...network.inputShape], rng.fork('input'), opts.inputRange ?? [-2, 2]);
  const r = randomTensor([input.shape[0], ...network.outputShape], rng.fork('r'), [-1, 1]);
  if (opts.randomizeParams) randomizeParams(network, seed, opts.randomizeParams);

  const loss = (): number => {
    const y = network.forward(input).data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r.data[i] * y[i];
    return s;
  };

  network.zeroGrad();
  const tape = network.forwardTape(input, { training: false, seed: 0 });
  const dx = network.backward(tape, r);
  const targets: { name: string; value: Float32Array; grad: Float32Array }[] = [{ name: 'input', value: input.data, grad: dx.data.slice() }];
  if (opts.params ?? true) {
    for (const p of network.parameters()) targets.push({ name: p.name, value: p.param.value.data, grad: p.param.grad.data.slice() });
  }

  const failures: GradcheckFailure[] = [];
  let checked = 0;
  let kinked = 0;
  let worstRatio = 0;
  const tol = (x: number, y: number): number => atol + rtol * Math.max(Math.abs(x), Math.abs(y));
  for (const t of targets) {
    const idx = pickIndices(t.value.length, maxPer, rng.fork(`pick.${t.name}`));
    for (const k of idx) {
      const a = t.grad[k];
      checked++;
      // Retry with a smaller step while the one-sided slopes disagree (a kink within h).
      let verdict: 'pass' | 'kinked' | GradcheckFailure = 'pass';
      for (let step = h, tries = 0; tries < 3; step /= 4, tries++) {
        const v = t.value[k];
        const vp = Math.fround(v + step);
        const vm = Math.fround(v - step);
        t.value[k] = vp;
        const lp = loss();
        t.value[k] = vm;
        const lm = loss();
        t.value[k] = v;
        const l0 = loss();
        const central = (lp - lm) / (vp - vm);
        const plus = (lp - l0) / (vp - v);
        const minus = (l0 - lm) / (v - vm);
        const ratio = Math.abs(a - central) / tol(a, central);
        if (ratio <= 1) {
          worstRatio = Math.max(worstRatio, ratio);
          verdict = 'pass';
          break;
        }
        const sidesDisagree = Math.abs(plus - minus) > tol(plus, minus);
        const lo = Math.min(plus, minus), hi = Math.max(plus, minus);
        if (sidesDisagree && a >= lo - tol(a, lo) && a <= hi + tol(a, hi)) {
          verdict = 'kinked';
          continue;
        }
        verdict = { tensor: t.name, index: k, analytic: a, numeric: central, plus, minus };
        if (!sidesDisagree) break; // smooth here and still wrong: a real failure
      }
      if (verdict === 'kinked') kinked++;
      else if (verdict !== 'pass') failures.push(verdict);
    }
  }
  const maxKinked = Math.max(2, Math.floor((opts.maxKinkedFraction ?? 0.2) * checked));
  const ok = failures.length === 0 && kinked <= maxKinked;
  return {
    ok,
    checked,
    kinked,
    failures,
    worstRatio,
    report() {
      const head = `gradcheck: ${checked} coordinates, ${failures.length} failed, ${kinked} kinked (max ${maxKinked}), worst passing ratio ${worstRatio.toFixed(3)}`;
      const lines = failures.slice(0, 10).map((f) => `  ${f.tensor}[${f.index}]: analytic ${f.analytic}, numeric ${f.numeric} (one-sided ${f.plus}, ${f.minus})`);
      return [head, ...lines].join('\n');
    },
  };
}

/** Overwrite every parameter of `net` with seeded uniform values in [lo, hi]. */
export function randomizeParams(net: Network, seed: number, range: [number, number]): void {
  const rng = new Prng(seed).fork('params');
  for (const p of net.parameters()) p.param.value.data.set(randomTensor(p.param.value.shape, rng.fork(p.name), range).data);
}

export function randomTensor(shape: readonly number[], rng: Prng, [lo, hi]: [number, number]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.uniformRange(lo, hi);
  return new Tensor(shape, d);
}

function pickIndices(n: number, max: number, rng: Prng): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from(rng.permutation(n).subarray(0, max)).sort((a, b) => a - b);
}
