/**
 * Framing: every frame is a 4-byte little-endian length N followed by N bytes (one
 * FlatBuffer) — a FlatBuffers size-prefixed buffer. The reader owns one growable buffer
 * that transports read into (or push chunks into) and hands out complete frames as views.
 *
 * A frame whose length is over the cap is answered with FRAME_TOO_LARGE and its bytes are
 * discarded, so the stream stays in sync; only a stream that ends inside a frame cannot be
 * framed any more (FRAME_TRUNCATED, then the connection closes).
 *
 * Alignment: FlatBuffers aligns a size-prefixed buffer from the start of its prefix, so a
 * frame placed at a 16-byte boundary has its tensor data 16-byte aligned. The reader moves
 * pending bytes to the start of its buffer whenever it compacts, so a frame that arrives
 * alone (the common request/response case) is read with its prefix at offset 0.
 */

export const FRAME_PREFIX_BYTES = 4;
/** Default cap on a request frame (without the prefix): 256 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

const DEFAULT_CAPACITY = 1 << 16;
const SHRINK_ABOVE = 64 * 1024 * 1024;

export type FrameEvent =
  | { kind: 'frame'; /** The whole frame, prefix included. Valid until the next read/push. */ frame: Uint8Array }
  | { kind: 'too_large'; length: number };

export class FrameReader {
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  /** Bytes of an over-cap frame still to discard. */
  private skip = 0;
  /** Bytes the frame being read needs in all (prefix included); 0 when between frames. */
  private need = 0;

  constructor(
    readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
    initialCapacity = DEFAULT_CAPACITY,
  ) {
    this.buf = new Uint8Array(initialCapacity);
  }

  /** Bytes buffered but not yet handed out. */
  get pending(): number {
    return this.end - this.start;
  }

  /** True when the stream is inside a frame (or inside a frame being discarded). */
  get midFrame(): boolean {
    return this.skip > 0 || this.end > this.start;
  }

  /** Describes the partial frame, for FRAME_TRUNCATED. */
  describePartial(): string {
    if (this.skip > 0) return `the stream ended with ${this.skip} bytes of an over-cap frame still to come`;
    const have = this.end - this.start;
    if (have < FRAME_PREFIX_BYTES) return `the stream ended after ${have} of the 4 length-prefix bytes`;
    const len = this.lengthAt(this.start);
    return `the stream ended after ${have - FRAME_PREFIX_BYTES} of the frame's ${len} bytes`;
  }

  private lengthAt(p: number): number {
    const b = this.buf;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  /** Makes room for at least `want` more bytes after `end` (compacting, then growing). */
  private reserve(want: number): void {
    if (this.start === this.end) {
      this.start = this.end = 0;
      // Give back the memory of a huge frame once it has been handled.
      if (this.buf.length > SHRINK_ABOVE && want <= DEFAULT_CAPACITY) this.buf = new Uint8Array(DEFAULT_CAPACITY);
    }
    if (this.buf.length - this.end >= want) return;
    const live = this.end - this.start;
    if (this.start > 0 && this.buf.length - live >= want) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      let cap = this.buf.length;
      while (cap - live < want) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
    }
    this.start = 0;
    this.end = live;
  }

  /**
   * Where the next read should put its bytes: [buffer, offset, length]. Call commit(n)
   * afterwards. Sized to finish the current frame when its length is known.
   */
  readTarget(minRead = 1 << 16): [Uint8Array, number, number] {
    const want = Math.max(minRead, this.need > 0 ? this.need - (this.end - this.start) : 0);
    this.reserve(want);
    return [this.buf, this.end, this.buf.length - this.end];
  }

  commit(n: number): void {
    this.end += n;
  }

  /** Copies a chunk in (stream transports). */
  push(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The next complete frame or cap violation, or null when more bytes are needed. */
  next(): FrameEvent | null {
    if (this.skip > 0) {
      const drop = Math.min(this.skip, this.end - this.start);
      this.start += drop;
      this.skip -= drop;
      if (this.skip > 0) return null;
    }
    const have = this.end - this.start;
    if (have < FRAME_PREFIX_BYTES) {
      this.need = 0;
      return null;
    }
    const len = this.lengthAt(this.start);
    if (len > this.maxFrameBytes) {
      this.start += FRAME_PREFIX_BYTES;
      this.skip = len;
      this.need = 0;
      return { kind: 'too_large', length: len };
    }
    const total = FRAME_PREFIX_BYTES + len;
    if (have < total) {
      this.need = total;
      return null;
    }
    const frame = this.buf.subarray(this.start, this.start + total);
    this.start += total;
    this.need = 0;
    return { kind: 'frame', frame };
  }
}

/** Prefixes a FlatBuffer with its length (for builders that did not finish size-prefixed). */
export function frameOf(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_PREFIX_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, FRAME_PREFIX_BYTES);
  return out;
}
