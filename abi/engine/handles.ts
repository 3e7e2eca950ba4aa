/**
 * The handle table of one connection. A handle is a 64-bit id plus a 32-bit generation:
 * id = connection number << 32 | slot number (slot numbers start at 1, so id 0 is never
 * issued), generation = how many times the slot has been (re)used. Freeing a slot bumps
 * its generation, so every old handle to it is detected as stale even after the slot is
 * reused; a handle whose connection number is not this connection's is foreign.
 */
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';
import { EngineError } from './errors.ts';

export type HandleKind = 'network' | 'optimizer';

export interface HandleValue {
  id: bigint;
  generation: number;
}

interface Slot<T> {
  generation: number;
  kind: HandleKind | null;
  value: T | null;
  /** Why the slot was last freed, for error messages ("freed by NetworkFree", "freed with its network"). */
  freedBy: string;
}

const MAX_GENERATION = 0xffffffff;

export class HandleTable<T> {
  private readonly slots: Slot<T>[] = [];
  private readonly free: number[] = [];
  private live = 0;

  /** `connection` is this connection's number, in [1, 2^32). */
  constructor(readonly connection: number, readonly maxLive = 1 << 20) {
    if (!Number.isInteger(connection) || connection < 1 || connection > 0xffffffff) throw new RangeError(`bad connection number ${connection}`);
  }

  get size(): number {
    return this.live;
  }

  add(kind: HandleKind, value: T): HandleValue {
    if (this.live >= this.maxLive) {
      throw new EngineError(ErrorCode.RESOURCE_LIMIT, `this connection holds ${this.live} live handles, the limit; free some first`, 'handles');
    }
    let index = this.free.pop();
    if (index === undefined) {
      index = this.slots.length;
      this.slots.push({ generation: 0, kind: null, value: null, freedBy: '' });
    }
    const slot = this.slots[index];
    slot.generation += 1;
    slot.kind = kind;
    slot.value = value;
    this.live++;
    return { id: (BigInt(this.connection) << 32n) | BigInt(index + 1), generation: slot.generation };
  }

  private describe(h: HandleValue): string {
    return `handle {id: ${h.id}, generation: ${h.generation}}`;
  }

  private slotOf(h: HandleValue, what: string): Slot<T> {
    if (h.id === 0n) throw new EngineError(ErrorCode.HANDLE_UNKNOWN, `${what} is the null handle (id 0)`, what);
    const conn = Number(h.id >> 32n);
    const index = Number(h.id & 0xffffffffn) - 1;
    if (conn !== this.connection) {
      throw new EngineError(ErrorCode.HANDLE_FOREIGN, `${this.describe(h)} belongs to connection ${conn}, not this connection (${this.connection}); handles are scoped to the connection that made them`, what);
    }
    const slot = index >= 0 ? this.slots[index] : undefined;
    if (!slot || h.generation < 1 || h.generation > slot.generation) {
      throw new EngineError(ErrorCode.HANDLE_UNKNOWN, `${this.describe(h)} was never issued on this connection`, what);
    }
    return slot;
  }

  /** The object behind a live handle of `kind`; precise errors otherwise. */
  get(h: HandleValue, kind: HandleKind, what: string): T {
    const slot = this.slotOf(h, what);
    if (slot.generation !== h.generation || slot.value === null) {
      throw new EngineError(ErrorCode.HANDLE_STALE, `${this.describe(h)} is stale: its ${slot.kind ?? 'object'} was ${slot.freedBy || 'freed'}`, what);
    }
    if (slot.kind !== kind) {
      throw new EngineError(ErrorCode.HANDLE_WRONG_KIND, `${this.describe(h)} is a ${slot.kind} handle, this call needs a ${kind} handle`, what);
    }
    return slot.value;
  }

  /** Frees a live handle of `kind`; a second free is HANDLE_DOUBLE_FREE. Returns the object. */
  release(h: HandleValue, kind: HandleKind, what: string, freedBy: string): T {
    const slot = this.slotOf(h, what);
    if (slot.value === null && slot.generation === h.generation) {
      throw new EngineError(ErrorCode.HANDLE_DOUBLE_FREE, `${this.describe(h)} was already ${slot.freedBy || 'freed'}`, what);
    }
    if (slot.generation !== h.generation) {
      // The slot was freed (and maybe reused) since this handle was issued.
      throw new EngineError(ErrorCode.HANDLE_DOUBLE_FREE, `${this.describe(h)} was already freed (its slot has moved on to generation ${slot.generation})`, what);
    }
    const value = this.get(h, kind, what);
    this.drop(h.id, slot, freedBy);
    return value;
  }

  /** Frees by id without checks (for dependents, e.g. optimizers of a freed network). */
  releaseWhere(pred: (kind: HandleKind, value: T) => boolean, freedBy: string): number {
    let n = 0;
    this.slots.forEach((slot, index) => {
      if (slot.value !== null && slot.kind !== null && pred(slot.kind, slot.value)) {
        this.drop((BigInt(this.connection) << 32n) | BigInt(index + 1), slot, freedBy);
        n++;
      }
    });
    return n;
  }

  private drop(id: bigint, slot: Slot<T>, freedBy: string): void {
    slot.value = null;
    slot.freedBy = freedBy;
    this.live--;
    // A slot whose generation would overflow is retired, never reused.
    if (slot.generation < MAX_GENERATION) this.free.push(Number(id & 0xffffffffn) - 1);
  }

  /** Frees everything (connection closed). */
  clear(): void {
    for (const slot of this.slots) {
      slot.value = null;
      slot.kind = null;
    }
    this.slots.length = 0;
    this.free.length = 0;
    this.live = 0;
  }
}
