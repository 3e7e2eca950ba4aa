/**
 * rnn, lstm and gru on the GPU, forward and training (the CPU reference is rnn.ts, lstm.ts,
 * gru.ts and kernels/recurrent.ts; their comments give the canonical arithmetic).
 *
 * Forward, per batch of B sequences of S steps (layout [B, S, w] as on the CPU):
 *   1. gi = W_ih x + b_ih for all B*S rows at once: dense's linear kernel (the CPU's
 *      inputProjection is the same linearForward, so the same order).
 *   2. One dispatch for the whole recurrence: one workgroup per sample, looping over time.
 *      Invocation l owns hidden units j = l, l + WG, ...: it forms their G gate sums
 *      gh[q*H + j] = (sum over k ascending of W_hh[q*H + j, k] * h_{t-1}[k], from +0) + b_hh,
 *      exactly the CPU's hiddenProjection, then the cell update of unit j in the CPU's order.
 *      h_t goes to y[b, t, :] (h_{t-1} is read back from y, or from the initial state at
 *      t = 0); a storage barrier per step makes it visible to the workgroup. The lstm cell
 *      c_t[j] is only ever used by the invocation that owns j, so it stays in a register.
 *   The initial state (RecurrentLayer.setInitialState) is read when the op runs, as the CPU
 *   reads it per forward; without one, zeros are uploaded (the CPU's new Float32Array). The
 *   final state is read back and recorded on the layer, so finalState() behaves as on the CPU.
 *
 * Training: the forward also writes what the CPU saves (gate activations, tanh(c_t), c_{t-1},
 * gh_n, h_{t-1}) into one buffer. Backward through time is again one workgroup per sample,
 * t = S-1 down to 0: phase A, per owned unit j, the element-wise gate gradients (the CPU's
 * formulas and order, dhrec / dcrec in registers, from +0); storage barrier; phase B, per
 * owned unit k, dhrec[k] = sum over the G*H gate rows ascending of dgh * W_hh[., k] (hiddenGrad;
 * gru then adds dh * z). dL/dh0 (and dL/dc0) are read back for initialStateGrad(). Then dx and
 * the parameter gradients with kernels/recurrent.wgsl.ts (linear.ts's order, rows (b, t)
 * ascending, each contribution summed from +0 and added once into the gradient).
 * Every sum and the zero states start from a run-time +0 (h_zero()): a literal 0.0 start
 * can be folded away (0.0 + p -> p) by a compiler that unrolls the loop (Mesa does), which
 * keeps a -0 that the CPU's +0 + -0 turns into +0.
 */
import { fail } from '../errors.ts';
import type { GpuCompileContext, GpuLayerKernel, GpuTrainContext, LayerOp, TrainOp } from '../backend/webgpu/kernel.ts';
import { paramOf } from '../backend/webgpu/kernel.ts';
import type { GpuVal, Kernel, Run, Val } from '../backend/webgpu/run.ts';
import { grid2d } from '../backend/webgpu/shader.ts';
import { linearBiasGradKernel, linearInputGradKernel, linearWeightGradKernel } from '../kernels/recurrent.wgsl.ts';
import { Tensor } from '../tensor.ts';
import { linearKernel } from './dense.wgsl.ts';
import type { Layer } from './layer.ts';
import type { RecurrentLayer, RnnConfig } from './rnn.ts';

type Cell = 'rnn' | 'lstm' | 'gru';

/** Most invocations per workgroup (one workgroup per sample). */
const MAX_WG = 256;

interface Dims {
  readonly cell: Cell;
  readonly B: number;
  readonly S: number;
  readonly I: number;
  readonly H: number;
  /** G * H gate rows. */
  readonly GH: number;
  readonly bias: boolean;
  readonly relu: boolean;
  readonly WG: number;
  /** Hidden units per invocation: ceil(H / WG). */
  readonly M: number;
}

function dimsOf(layer: RecurrentLayer, batch: number): Dims {
  const cell = layer.type as Cell;
  const H = layer.hidden;
  const WG = Math.min(H, MAX_WG);
  return {
    cell, B: batch, S: layer.seq, I: layer.inF, H, GH: layer.gates * H, bias: layer.config.bias,
    relu: cell === 'rnn' && (layer.config as RnnConfig).nonlinearity === 'relu', WG, M: Math.ceil(H / WG),
  };
}

/** Sections of the training save buffer (element offsets) and its size. */
function saveLayout(d: Dims): { ACT: number; TC: number; CP: number; GHN: number; HP: number; size: number } {
  const rows = d.B * d.S;
  const bsh = rows * d.H;
  if (d.cell === 'rnn') return { ACT: 0, TC: 0, CP: 0, GHN: 0, HP: 0, size: bsh };
  if (d.cell === 'lstm') {
    const TC = rows * d.GH;
    return { ACT: 0, TC, CP: TC + bsh, GHN: 0, HP: TC + 2 * bsh, size: TC + 3 * bsh };
  }
  const GHN = rows * d.GH;
  return { ACT: 0, TC: 0, CP: 0, GHN, HP: GHN + bsh, size: GHN + 2 * bsh };
}

/** State values per sample: h, and c for lstm. */
function stateWidth(d: Dims): number {
  return d.cell === 'lstm' ? 2 : 1;
}

/** Loops `body` over the hidden units this invocation owns (j, with m its register slot). */
function owned(body: string): string {
  return `  for (var m = 0u; m < M; m++) {
    let j = lid.x + m * WG;
    if (j < H) {
${body}
    }
  }`;
}

/** The element-wise step of the cell at (b, t) for unit j, hp = h_{t-1}[j]; writes y (and the save buffer). */
function forwardCell(d: Dims, train: boolean): string {
  const I = '      ';
  const lines: string[] = [];
  const save = (line: string): void => {
    if (train) lines.push(line);
  };
  if (d.cell === 'rnn') {
    lines.push('let a = pre(j, b, t, row);');
    lines.push(d.relu ? 'y[row * H + j] = select(0.0, a, a > 0.0);' : 'y[row * H + j] = heddle_tanh(a);');
    save('sv[HP + row * H + j] = hp;');
  } else if (d.cell === 'lstm') {
    lines.push(
      'let iv = heddle_sigmoid(pre(j, b, t, row));',
      'let fv = heddle_sigmoid(pre(H + j, b, t, row));',
      'let gv = heddle_tanh(pre(2u * H + j, b, t, row));',
      'let ov = heddle_sigmoid(pre(3u * H + j, b, t, row));',
      'let cp = cst[m];',
      'let cv = h_add(h_mul(fv, cp), h_mul(iv, gv));',
      'let tcv = heddle_tanh(cv);',
      'cst[m] = cv;',
      'y[row * H + j] = h_mul(ov, tcv);',
    );
    save('sv[ACT + row * GH + j] = iv;');
    save('sv[ACT + row * GH + H + j] = fv;');
    save('sv[ACT + row * GH + 2u * H + j] = gv;');
    save('sv[ACT + row * GH + 3u * H + j] = ov;');
    save('sv[TC + row * H + j] = tcv;');
    save('sv[CP + row * H + j] = cp;');
    save('sv[HP + row * H + j] = hp;');
  } else {
    // PyTorch's formula: b_hn stays inside the reset product.
    lines.push(
      'let rv = heddle_sigmoid(pre(j, b, t, row));',
      'let zv = heddle_sigmoid(pre(H + j, b, t, row));',
      'let ghn = gh(2u * H + j, b, t);',
      'let nv = heddle_tanh(h_add(gi[row * GH + 2u * H + j], h_mul(rv, ghn)));',
      'y[row * H + j] = h_add(h_mul(h_sub(1.0, zv), nv), h_mul(zv, hp));',
    );
    save('sv[ACT + row * GH + j] = rv;');
    save('sv[ACT + row * GH + H + j] = zv;');
    save('sv[ACT + row * GH + 2u * H + j] = nv;');
    save('sv[GHN + row * H + j] = ghn;');
    save('sv[HP + row * H + j] = hp;');
  }
  return lines.map((l) => I + l).join('\n');
}

/**
 * The recurrence (one workgroup per sample). Binds gi, whh, (bhh,) hinit, y, fin (, sv):
 * hinit = [h0 (B*H), c0 (B*H) for lstm], fin the same layout for h_S (, c_S).
 */
function forwardKernel(cc: GpuCompileContext, d: Dims, train: boolean, label: string): Promise<Kernel> {
  const g = grid2d(d.B, cc.maxWorkgroups);
  const lay = saveLayout(d);
  const lstm = d.cell === 'lstm';
  const decls = `fn hsum(o: u32, b: u32, t: u32) -> f32 {
  var acc = h_zero();
  if (t == 0u) {
    for (var k = 0u; k < H; k++) { acc = h_add(acc, h_mul(whh[o * H + k], hinit[b * H + k])); }
  } else {
    let base = (b * S + t - 1u) * H;
    for (var k = 0u; k < H; k++) { acc = h_add(acc, h_mul(whh[o * H + k], y[base + k])); }
  }
  return acc;
}
fn gh(o: u32, b: u32, t: u32) -> f32 { return ${d.bias ? 'h_add(hsum(o, b, t), bhh[o])' : 'hsum(o, b, t)'}; }
fn pre(o: u32, b: u32, t: u32, row: u32) -> f32 { return h_add(gi[row * GH + o], gh(o, b, t)); }`;
  const body = `  let b = wid.y * NX + wid.x;
  if (b >= B) { return; }
${lstm ? `  var cst: array<f32, M>;\n${owned('      cst[m] = hinit[B * H + b * H + j];')}\n` : ''}  for (var t = 0u; t < S; t++) {
    let row = b * S + t;
${owned(`      var hp = 0.0;
      if (t == 0u) { hp = hinit[b * H + j]; } else { hp = y[(row - 1u) * H + j]; }
${forwardCell(d, train)}`)}
    storageBarrier();
    workgroupBarrier();
  }
${owned(`      fin[b * H + j] = y[(b * S + S - 1u) * H + j];${lstm ? '\n      fin[B * H + b * H + j] = cst[m];' : ''}`)}`;
  return cc.kernel(
    {
      label,
      buffers: [
        { name: 'gi', access: 'read' },
        { name: 'whh', access: 'read' },
        ...(d.bias ? [{ name: 'bhh', access: 'read' as const }] : []),
        { name: 'hinit', access: 'read' },
        { name: 'y', access: 'read_write' },
        { name: 'fin', access: 'read_write' },
        ...(train ? [{ name: 'sv', access: 'read_write' as const }] : []),
      ],
      math: d.cell === 'rnn' ? (d.relu ? [] : ['tanh']) : ['sigmoid', 'tanh'],
      consts: { B: d.B, S: d.S, H: d.H, GH: d.GH, WG: d.WG, M: d.M, NX: g.x, ...(train ? { ACT: lay.ACT, TC: lay.TC, CP: lay.CP, GHN: lay.GHN, HP: lay.HP } : {}) },
      decls,
      workgroupSize: [d.WG],
      body,
    },
    [g.x, g.y],
  );
}

/** Phase A of backward at (b, t) for unit j: the CPU's gate gradients, in its order. */
function backwardCell(d: Dims): string {
  const I = '      ';
  let lines: string[];
  if (d.cell === 'rnn') {
    lines = [
      'let dh = h_add(dy[row * H + j], dhr[m]);',
      'let hv = y[row * H + j];',
      d.relu ? 'da[row * H + j] = select(0.0, dh, hv > 0.0);' : 'da[row * H + j] = tgrad(dh, hv);',
    ];
  } else if (d.cell === 'lstm') {
    lines = [
      'let ao = ACT + row * GH;',
      'let iv = sv[ao + j];',
      'let fv = sv[ao + H + j];',
      'let gv = sv[ao + 2u * H + j];',
      'let ov = sv[ao + 3u * H + j];',
      'let tcv = sv[TC + row * H + j];',
      'let dh = h_add(dy[row * H + j], dhr[m]);',
      'let dc = h_add(dcr[m], tgrad(h_mul(dh, ov), tcv));',
      'da[row * GH + j] = sgrad(h_mul(dc, gv), iv);',
      'da[row * GH + H + j] = sgrad(h_mul(dc, sv[CP + row * H + j]), fv);',
      'da[row * GH + 2u * H + j] = tgrad(h_mul(dc, iv), gv);',
      'da[row * GH + 3u * H + j] = sgrad(h_mul(dh, tcv), ov);',
      'dcr[m] = h_mul(dc, fv);',
    ];
  } else {
    lines = [
      'let ao = ACT + row * GH;',
      'let rv = sv[ao + j];',
      'let zv = sv[ao + H + j];',
      'let nv = sv[ao + 2u * H + j];',
      'let dh = h_add(dy[row * H + j], dhr[m]);',
      'let dan = tgrad(h_mul(dh, h_sub(1.0, zv)), nv);',
      'let daz = sgrad(h_mul(dh, h_sub(sv[HP + row * H + j], nv)), zv);',
      'let dar = sgrad(h_mul(dan, sv[GHN + row * H + j]), rv);',
      'dgi[row * GH + j] = dar;',
      'dgi[row * GH + H + j] = daz;',
      'dgi[row * GH + 2u * H + j] = dan;',
      'dgh[row * GH + j] = dar;',
      'dgh[row * GH + H + j] = daz;',
      'dgh[row * GH + 2u * H + j] = h_mul(dan, rv);',
      'dzr[m] = h_mul(dh, zv);',
    ];
  }
  return lines.map((l) => I + l).join('\n');
}

/**
 * Backward through time (one workgroup per sample). Binds dy, (y for rnn | sv), whh, then the
 * gate gradients (da, or dgi and dgh for gru) and g0 = [dL/dh0 (B*H), dL/dc0 (B*H) for lstm].
 */
function backwardKernel(cc: GpuCompileContext, d: Dims, label: string): Promise<Kernel> {
  const g = grid2d(d.B, cc.maxWorkgroups);
  const lay = saveLayout(d);
  const lstm = d.cell === 'lstm', gru = d.cell === 'gru';
  const dghName = gru ? 'dgh' : 'da';
  const decls = `// (dy * (1 - s)) * s and dy * (1 - t * t), as kernels/recurrent.ts sigmoidGrad / tanhGrad.
fn sgrad(d: f32, s: f32) -> f32 { return h_mul(h_mul(d, h_sub(1.0, s)), s); }
fn tgrad(d: f32, t: f32) -> f32 { return h_mul(d, h_sub(1.0, h_mul(t, t))); }`;
  const body = `  let b = wid.y * NX + wid.x;
  if (b >= B) { return; }
  // The CPU's dhrec / dcrec start as +0 (a run-time +0: a literal zero may lose its sign).
  let pz = h_zero();
  var dhr: array<f32, M>;
${lstm ? '  var dcr: array<f32, M>;\n' : ''}${gru ? '  var dzr: array<f32, M>;\n' : ''}  for (var m = 0u; m < M; m++) {
    dhr[m] = pz;
${lstm ? '    dcr[m] = pz;\n' : ''}  }
  for (var tt = 0u; tt < S; tt++) {
    let t = S - 1u - tt;
    let row = b * S + t;
${owned(backwardCell(d))}
    storageBarrier();
    workgroupBarrier();
${owned(`      var acc = h_zero();
      for (var o = 0u; o < GH; o++) { acc = h_add(acc, h_mul(${dghName}[row * GH + o], whh[o * H + j])); }
      dhr[m] = ${gru ? 'h_add(acc, dzr[m])' : 'acc'};`)}
  }
${owned(`      g0[b * H + j] = dhr[m];${lstm ? '\n      g0[B * H + b * H + j] = dcr[m];' : ''}`)}`;
  return cc.kernel(
    {
      label,
      buffers: [
        { name: 'dy', access: 'read' },
        d.cell === 'rnn' ? { name: 'y', access: 'read' } : { name: 'sv', access: 'read' },
        { name: 'whh', access: 'read' },
        ...(gru ? [{ name: 'dgi', access: 'read_write' as const }, { name: 'dgh', access: 'read_write' as const }] : [{ name: 'da', access: 'read_write' as const }]),
        { name: 'g0', access: 'read_write' },
      ],
      consts: { B: d.B, S: d.S, H: d.H, GH: d.GH, WG: d.WG, M: d.M, NX: g.x, ...(d.cell === 'rnn' ? {} : { ACT: lay.ACT, TC: lay.TC, CP: lay.CP, GHN: lay.GHN, HP: lay.HP }) },
      decls,
      workgroupSize: [d.WG],
      body,
    },
    [g.x, g.y],
  );
}

/** Access to the layer's state records (protected on RecurrentLayer; the CPU forward/backward call them). */
interface StateRecorder {
  recordFinal(batch: number, h: Float32Array, c: Float32Array | null): void;
  recordGrad(batch: number, dh: Float32Array, dc: Float32Array | null): void;
}

/** The initial state as one upload [h0 (B*H), c0 (B*H) for lstm]; the CPU's startState checks, zeros when unset. */
function initialState(layer: RecurrentLayer, d: Dims): Tensor {
  const st = layer.initialState();
  const size = d.B * d.H;
  const data = new Float32Array(size * stateWidth(d));
  for (const [t, name, off] of [[st.h, 'h0', 0], [st.c, 'c0', size]] as const) {
    if (!t) continue;
    if (t.shape[0] !== d.B) fail('SHAPE_MISMATCH', `${name} was set for batch ${t.shape[0]}, but the input has batch ${d.B}`, `${layer.where}.initial_state`);
    if (off < data.length) data.set(t.data as Float32Array, off);
  }
  return new Tensor([data.length], data);
}

/** Splits a read-back [h (B*H), c (B*H)] state into its parts. */
function splitState(d: Dims, v: Float32Array): { h: Float32Array; c: Float32Array | null } {
  const size = d.B * d.H;
  return { h: v.slice(0, size), c: d.cell === 'lstm' ? v.slice(size, 2 * size) : null };
}

interface Compiled {
  readonly d: Dims;
  readonly proj: Kernel;
  readonly rec: Kernel;
  readonly wih: ReturnType<GpuCompileContext['weight']>;
  readonly bih: ReturnType<GpuCompileContext['weight']> | null;
  readonly whh: ReturnType<GpuCompileContext['weight']>;
  readonly bhh: ReturnType<GpuCompileContext['weight']> | null;
}

async function compileForward(layer: RecurrentLayer, cc: GpuCompileContext, train: boolean): Promise<Compiled> {
  const d = dimsOf(layer, cc.batch);
  const rows = d.B * d.S;
  cc.need(rows * Math.max(d.GH, d.I), `${cc.prefix} (${d.cell}) gate projections`);
  if (train) cc.need(saveLayout(d).size, `${cc.prefix} (${d.cell}) saved activations`);
  const tag = `${cc.prefix} ${d.cell} B${d.B} S${d.S} ${d.I}->${d.H}`;
  const bih = paramOf(layer, 'bias_ih');
  const bhh = paramOf(layer, 'bias_hh');
  const proj = await linearKernel(cc, { label: `${tag} input projection`, rows, inF: d.I, outF: d.GH, bias: bih !== null, activation: 'linear' });
  const rec = await forwardKernel(cc, d, train, `${tag} ${train ? 'training ' : ''}recurrence`);
  return {
    d, proj, rec,
    wih: cc.weight(paramOf(layer, 'weight_ih')!), bih: bih ? cc.weight(bih) : null,
    whh: cc.weight(paramOf(layer, 'weight_hh')!), bhh: bhh ? cc.weight(bhh) : null,
  };
}

/** Records the forward; returns the output, the input on the GPU, and the save buffer (training). */
async function runForward(layer: RecurrentLayer, k: Compiled, run: Run, xv: Val, train: boolean): Promise<{ y: GpuVal; x: GpuVal; sv: GpuVal | null }> {
  const d = k.d;
  const init = run.gpu({ kind: 'cpu', tensor: initialState(layer, d) });
  const x = run.gpu(xv);
  const gi = run.output([d.B * d.S * d.GH]);
  run.dispatch(k.proj, k.bih ? [x.buffer, k.wih, k.bih, gi.buffer] : [x.buffer, k.wih, gi.buffer]);
  const y = run.output([d.B, d.S, d.H]);
  const fin = run.output([d.B * d.H * stateWidth(d)]);
  const sv = train ? run.output([saveLayout(d).size]) : null;
  run.dispatch(k.rec, [gi.buffer, k.whh, ...(k.bhh ? [k.bhh] : []), init.buffer, y.buffer, fin.buffer, ...(sv ? [sv.buffer] : [])]);
  // finalState() after a forward, as the CPU layer records it.
  const [f] = await run.cpuMany([fin]);
  const s = splitState(d, f);
  (layer as unknown as StateRecorder).recordFinal(d.B, s.h, s.c);
  return { y, x, sv };
}

interface Saved {
  readonly x: GpuVal;
  readonly y: GpuVal;
  readonly sv: GpuVal;
}

async function compileTrain(layer: RecurrentLayer, cc: GpuTrainContext): Promise<TrainOp> {
  const fwd = await compileForward(layer, cc, true);
  const d = fwd.d;
  const rows = d.B * d.S;
  const lay = saveLayout(d);
  const tag = `${cc.prefix} ${d.cell} B${d.B} S${d.S} ${d.I}->${d.H}`;
  const bwd = await backwardKernel(cc, d, `${tag} backward through time`);
  const dxK = await linearInputGradKernel(cc, `${tag} dx`, rows, d.GH, d.I);
  const gwIh = await linearWeightGradKernel(cc, `${tag} weight_ih grad`, rows, d.GH, d.I, 0);
  const gwHh = await linearWeightGradKernel(cc, `${tag} weight_hh grad`, rows, d.GH, d.H, lay.HP);
  const gb = d.bias ? await linearBiasGradKernel(cc, `${tag} bias grad`, rows, d.GH) : null;
  const wihP = paramOf(layer, 'weight_ih')!, whhP = paramOf(layer, 'weight_hh')!;
  const bihP = paramOf(layer, 'bias_ih'), bhhP = paramOf(layer, 'bias_hh');
  return {
    async forward(run, xv) {
      const r = await runForward(layer, fwd, run, xv, true);
      const saved: Saved = { x: r.x, y: r.y, sv: r.sv! };
      return { y: r.y, saved };
    },
    async backward(run, s, dyv) {
      const { x, y, sv } = s as Saved;
      const dy = run.gpu(dyv);
      const dgi = run.output([rows * d.GH]);
      const dgh = d.cell === 'gru' ? run.output([rows * d.GH]) : dgi;
      const g0 = run.output([d.B * d.H * stateWidth(d)]);
      run.dispatch(bwd, [dy.buffer, d.cell === 'rnn' ? y.buffer : sv.buffer, fwd.whh, ...(d.cell === 'gru' ? [dgi.buffer, dgh.buffer] : [dgi.buffer]), g0.buffer]);
      const dx = run.output([d.B, ...layer.inputShape]);
      run.dispatch(dxK, [dgi.buffer, fwd.wih, dx.buffer]);
      run.dispatch(gwIh, [dgi.buffer, x.buffer, cc.grad(wihP)]);
      if (gb && bihP) run.dispatch(gb, [dgi.buffer, cc.grad(bihP)]);
      // h_{t-1} for every (b, t): the save buffer's HP section (rnn: all of it).
      run.dispatch(gwHh, [dgh.buffer, sv.buffer, cc.grad(whhP)]);
      if (gb && bhhP) run.dispatch(gb, [dgh.buffer, cc.grad(bhhP)]);
      // initialStateGrad() after a backward, as the CPU layer records it.
      const [g] = await run.cpuMany([g0]);
      const st = splitState(d, g);
      (layer as unknown as StateRecorder).recordGrad(d.B, st.h, st.c);
      return { dx };
    },
  };
}

function recurrentGpu(type: Cell): GpuLayerKernel {
  return {
    type,
    async compile(layer: Layer, cc: GpuCompileContext): Promise<LayerOp> {
      const l = layer as RecurrentLayer;
      const k = await compileForward(l, cc, false);
      return async (run: Run, xv: Val): Promise<Val> => (await runForward(l, k, run, xv, false)).y;
    },
    compileTrain(layer: Layer, cc: GpuTrainContext): Promise<TrainOp> {
      return compileTrain(layer as RecurrentLayer, cc);
    },
  };
}

/** Registered in core/backend/webgpu/kernels.ts. */
export const recurrentGpuKernels: readonly GpuLayerKernel[] = [recurrentGpu('rnn'), recurrentGpu('lstm'), recurrentGpu('gru')];
