import { describe, expect, it } from 'vitest';
import { FrameReader, frameOf } from './framing.ts';

function bytes(...xs: number[]): Uint8Array {
  return new Uint8Array(xs);
}

describe('FrameReader', () => {
  it('splits a stream into frames however it is chunked', () => {
    const frames = [frameOf(bytes(1, 2, 3)), frameOf(bytes()), frameOf(new Uint8Array(300).fill(7)), frameOf(bytes(9))];
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let o = 0;
    for (const f of frames) {
      all.set(f, o);
      o += f.length;
    }
    for (const chunk of [1, 2, 3, 5, 64, 1000]) {
      const r = new FrameReader(1024, 16);
      const got: number[] = [];
      for (let i = 0; i < all.length; i += chunk) {
        r.push(all.subarray(i, i + chunk));
        for (let ev = r.next(); ev; ev = r.next()) if (ev.kind === 'frame') got.push(ev.frame.length - 4);
      }
      expect(got).toEqual([3, 0, 300, 1]);
      expect(r.midFrame).toBe(false);
    }
  });

  it('reports an over-cap frame once and discards exactly its bytes', () => {
    const r = new FrameReader(8);
    const big = frameOf(new Uint8Array(20).fill(1));
    r.push(big.subarray(0, 10));
    expect(r.next()).toEqual({ kind: 'too_large', length: 20 });
    expect(r.next()).toBeNull();
    expect(r.midFrame).toBe(true);
    r.push(big.subarray(10));
    r.push(frameOf(bytes(5, 6)));
    const ev = r.next();
    expect(ev?.kind === 'frame' && Array.from(ev.frame)).toEqual([2, 0, 0, 0, 5, 6]);
  });

  it('describes a partial frame at end of stream', () => {
    const r = new FrameReader();
    r.push(bytes(10, 0));
    expect(r.next()).toBeNull();
    expect(r.midFrame).toBe(true);
    expect(r.describePartial()).toMatch(/2 of the 4 length-prefix bytes/);
    r.push(bytes(0, 0, 1, 2, 3));
    expect(r.next()).toBeNull();
    expect(r.describePartial()).toMatch(/3 of the frame's 10 bytes/);
  });

  it('reads in place through readTarget/commit and keeps a lone frame at offset 0', () => {
    const r = new FrameReader(1 << 20, 16);
    const f = frameOf(new Uint8Array(100).fill(3));
    const [buf, off, len] = r.readTarget(8);
    expect(off).toBe(0);
    const n = Math.min(len, f.length);
    buf.set(f.subarray(0, n), off);
    r.commit(n);
    while (r.next() === null) {
      const [b2, o2] = r.readTarget(8);
      const have = r.pending;
      b2.set(f.subarray(have, have + 1), o2);
      r.commit(1);
    }
    expect(r.pending).toBe(0);
  });
});
