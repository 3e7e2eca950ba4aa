import { describe, expect, it } from 'vitest';
import { EngineError } from './errors.ts';
import { ErrorCode } from './generated/fb/heddle/abi/error-code.ts';
import { HandleTable } from './handles.ts';

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof EngineError) return ErrorCode[e.code];
    throw e;
  }
  return 'OK';
}

describe('HandleTable', () => {
  it('issues ids with the connection in the upper 32 bits and slots from 1', () => {
    const t = new HandleTable<string>(7);
    const a = t.add('network', 'a');
    const b = t.add('optimizer', 'b');
    expect(a).toEqual({ id: (7n << 32n) | 1n, generation: 1 });
    expect(b).toEqual({ id: (7n << 32n) | 2n, generation: 1 });
    expect(t.get(a, 'network', 'x')).toBe('a');
    expect(t.size).toBe(2);
  });

  it('tells unknown, foreign, stale, double-freed and wrong-kind handles apart', () => {
    const t = new HandleTable<string>(1);
    const a = t.add('network', 'a');
    expect(code(() => t.get({ id: 0n, generation: 1 }, 'network', 'x'))).toBe('HANDLE_UNKNOWN');
    expect(code(() => t.get({ id: (1n << 32n) | 5n, generation: 1 }, 'network', 'x'))).toBe('HANDLE_UNKNOWN');
    expect(code(() => t.get({ id: a.id, generation: 2 }, 'network', 'x'))).toBe('HANDLE_UNKNOWN');
    expect(code(() => t.get({ id: (2n << 32n) | 1n, generation: 1 }, 'network', 'x'))).toBe('HANDLE_FOREIGN');
    expect(code(() => t.get(a, 'optimizer', 'x'))).toBe('HANDLE_WRONG_KIND');
    expect(code(() => t.release(a, 'optimizer', 'x', 'freed'))).toBe('HANDLE_WRONG_KIND');
    expect(t.release(a, 'network', 'x', 'freed by test')).toBe('a');
    expect(code(() => t.get(a, 'network', 'x'))).toBe('HANDLE_STALE');
    expect(code(() => t.release(a, 'network', 'x', 'freed'))).toBe('HANDLE_DOUBLE_FREE');
    const b = t.add('optimizer', 'b'); // reuses the slot, next generation
    expect(b).toEqual({ id: a.id, generation: 2 });
    expect(code(() => t.get(a, 'network', 'x'))).toBe('HANDLE_STALE');
    expect(code(() => t.release(a, 'network', 'x', 'freed'))).toBe('HANDLE_DOUBLE_FREE');
    expect(t.get(b, 'optimizer', 'x')).toBe('b');
  });

  it('frees dependents and enforces the live-handle limit', () => {
    const t = new HandleTable<{ owner: number }>(1, 3);
    t.add('network', { owner: 0 });
    const o1 = t.add('optimizer', { owner: 1 });
    t.add('optimizer', { owner: 1 });
    expect(code(() => t.add('network', { owner: 0 }))).toBe('RESOURCE_LIMIT');
    expect(t.releaseWhere((k, v) => k === 'optimizer' && v.owner === 1, 'freed with its network')).toBe(2);
    expect(code(() => t.get(o1, 'optimizer', 'x'))).toBe('HANDLE_STALE');
    expect(t.size).toBe(1);
  });
});
