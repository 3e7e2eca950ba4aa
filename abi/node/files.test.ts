import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveNetworkJSON, saveNetworkSafetensors } from '../../core/io/network_io.ts';
import { expectError } from '../../core/io/test_util.ts';
import { Network } from '../../core/network.ts';
import { loadNetworkFile, loadWeightsFile, readFileBytes, saveNetworkFile, writeFileAtomic } from './files.ts';

const CONFIG = {
  layers: [
    { type: 'dense', input_height: 4, output_height: 6, activation: 'relu' },
    { type: 'dense', input_height: 6, output_height: 2 },
  ],
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heddle-files-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const ls = (d = dir) => fs.readdirSync(d).sort();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const weightsHex = (net: Network) => [...net.getWeights()].map(([n, t]) => `${n}:${Buffer.from(t.data.buffer).toString('hex')}`).join(' ');

describe('writeFileAtomic', () => {
  it('writes bytes and strings, replaces an existing file, leaves no temp file', () => {
    const f = path.join(dir, 'a.bin');
    writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    writeFileAtomic(f, 'héllo');
    expect(fs.readFileSync(f, 'utf8')).toBe('héllo');
    writeFileAtomic(f, new Uint8Array(0));
    expect(fs.readFileSync(f).length).toBe(0);
    expect(ls()).toEqual(['a.bin']);
  });

  it('writes a large buffer completely', () => {
    const f = path.join(dir, 'big.bin');
    const big = Uint8Array.from({ length: 5_000_001 }, (_, k) => (k * 7) & 255);
    writeFileAtomic(f, big);
    expect(sha(fs.readFileSync(f))).toBe(sha(big));
  });

  it('into a directory that does not exist: IO_ERROR naming the path, nothing created', () => {
    const f = path.join(dir, 'missing', 'a.bin');
    expectError(() => writeFileAtomic(f, 'x'), 'IO_ERROR', f, 'cannot write', 'does not exist', 'ENOENT');
    expect(ls()).toEqual([]);
  });

  it('a failure after the temp file is written removes it and leaves the target untouched', () => {
    const f = path.join(dir, 'model.safetensors');
    fs.writeFileSync(f, 'old contents');
    let seenTemp = '';
    expectError(
      () =>
        writeFileAtomic(f, 'new contents', {
          beforeRename(tmp) {
            seenTemp = tmp;
            // The temp file sits beside the target, complete, before the rename.
            expect(path.dirname(tmp)).toBe(path.dirname(fs.realpathSync(f)));
            expect(fs.readFileSync(tmp, 'utf8')).toBe('new contents');
            throw Object.assign(new Error('disk unplugged'), { code: 'EIO' });
          },
        }),
      'IO_ERROR',
      f,
      'cannot write',
      'I/O error',
    );
    expect(seenTemp).not.toBe('');
    expect(fs.existsSync(seenTemp)).toBe(false);
    expect(fs.readFileSync(f, 'utf8')).toBe('old contents');
    expect(ls()).toEqual(['model.safetensors']);
  });

  it('when the rename itself fails (target is a directory) the temp file is removed', () => {
    const target = path.join(dir, 'occupied');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'k');
    expectError(() => writeFileAtomic(target, 'x'), 'IO_ERROR', target, 'cannot write');
    expect(ls()).toEqual(['occupied']);
    expect(ls(target)).toEqual(['keep']);
  });

  it.skipIf(process.platform === 'win32')('keeps the permission bits of an existing file and writes through a symlink', () => {
    const f = path.join(dir, 'private.json');
    fs.writeFileSync(f, '{}');
    fs.chmodSync(f, 0o600);
    writeFileAtomic(f, '{"a":1}');
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    const link = path.join(dir, 'link.json');
    fs.symlinkSync(f, link);
    writeFileAtomic(link, '{"b":2}');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(f, 'utf8')).toBe('{"b":2}');
    expect(ls()).toEqual(['link.json', 'private.json']);
  });
});

describe('readFileBytes', () => {
  it('returns the bytes as a plain Uint8Array', () => {
    const f = path.join(dir, 'x.bin');
    fs.writeFileSync(f, Buffer.from([9, 8, 7]));
    const b = readFileBytes(f);
    expect(b.constructor).toBe(Uint8Array);
    expect([...b]).toEqual([9, 8, 7]);
  });

  it('missing file, directory, size limit: IO_ERROR naming the path', () => {
    const f = path.join(dir, 'nope.safetensors');
    expectError(() => readFileBytes(f), 'IO_ERROR', `${f}: cannot read: no such file`);
    expectError(() => readFileBytes(dir), 'IO_ERROR', dir, 'cannot read', 'directory');
    const g = path.join(dir, 'ten.bin');
    fs.writeFileSync(g, Buffer.alloc(10));
    expectError(() => readFileBytes(g, { maxBytes: 9 }), 'IO_ERROR', g, '10 bytes, over the limit of 9');
    expect(readFileBytes(g, { maxBytes: 10 }).length).toBe(10);
  });
});

describe('network files', () => {
  it('save/load by extension: same bytes as the in-memory writers, bit-exact weights', () => {
    const net = Network.fromJSON(CONFIG, { seed: 5 });
    const st = path.join(dir, 'net.safetensors');
    const js = path.join(dir, 'net.JSON');
    saveNetworkFile(net, st);
    saveNetworkFile(net, js);
    expect(sha(fs.readFileSync(st))).toBe(sha(saveNetworkSafetensors(net)));
    expect(fs.readFileSync(js, 'utf8')).toBe(saveNetworkJSON(net));
    for (const f of [st, js]) {
      const back = loadNetworkFile(f);
      expect(weightsHex(back)).toBe(weightsHex(net));
      expect(back.configJSON()).toEqual(net.configJSON());
    }
    const other = Network.fromJSON(CONFIG, { seed: 6 });
    expect(weightsHex(other)).not.toBe(weightsHex(net));
    loadWeightsFile(other, js);
    expect(weightsHex(other)).toBe(weightsHex(net));
    const third = Network.fromJSON(CONFIG, { seed: 7 });
    loadWeightsFile(third, st);
    expect(weightsHex(third)).toBe(weightsHex(net));
  });

  it('an unknown extension is UNSUPPORTED and writes nothing', () => {
    const net = Network.fromJSON(CONFIG);
    const f = path.join(dir, 'net.bin');
    expectError(() => saveNetworkFile(net, f), 'UNSUPPORTED', f, "'.bin'", '.safetensors or .json');
    expectError(() => loadNetworkFile(path.join(dir, 'net')), 'UNSUPPORTED', "''");
    expect(ls()).toEqual([]);
  });

  it('load errors name the file', () => {
    const missing = path.join(dir, 'gone.safetensors');
    expectError(() => loadNetworkFile(missing), 'IO_ERROR', missing, 'no such file');
    const corrupt = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(corrupt, Buffer.from([1, 2, 3]));
    expectError(() => loadNetworkFile(corrupt), 'FORMAT_INVALID', `${corrupt}: header`);
    const badJson = path.join(dir, 'bad.json');
    fs.writeFileSync(badJson, '{"format":"heddle-network","version":1,"format":"x"}');
    expectError(() => loadNetworkFile(badJson), 'FORMAT_INVALID', badJson, 'duplicate key "format"');
    expectError(() => loadNetworkFile(badJson, { config: CONFIG }), 'INPUT_INVALID', badJson, 'opts.config');
  });

  it('a failed save keeps the previous file', () => {
    const net = Network.fromJSON(CONFIG, { seed: 1 });
    const f = path.join(dir, 'net.safetensors');
    saveNetworkFile(net, f);
    const before = sha(fs.readFileSync(f));
    fs.chmodSync(dir, 0o500); // no new files in the directory
    try {
      if (process.getuid?.() === 0) return; // root ignores permissions; the hook test above covers this path
      expectError(() => saveNetworkFile(Network.fromJSON(CONFIG, { seed: 2 }), f), 'IO_ERROR', f, 'permission denied');
    } finally {
      fs.chmodSync(dir, 0o700);
    }
    expect(sha(fs.readFileSync(f))).toBe(before);
    expect(ls()).toEqual(['net.safetensors']);
  });
});

/*
 * The same save code under Deno and Bun must produce the same file bytes as under Node
 * (the project's promise is identical bits across runtimes). Skipped when the runtime
 * binary is not installed.
 */
describe('cross-runtime file bytes', () => {
  const root = path.resolve(__dirname, '../..');
  const bins: Record<string, string[]> = {
    deno: [path.join(root, 'node_modules/.bin/deno'), 'run', '--allow-read', '--allow-write', '--no-config', '--no-lock'],
    bun: [path.join(root, 'node_modules/.bin/bun'), 'run'],
  };
  for (const [name, [bin, ...args]] of Object.entries(bins)) {
    it.skipIf(!fs.existsSync(bin))(`${name} writes the same .safetensors and .json bytes as node`, () => {
      const script = path.join(dir, 'save.ts');
      const url = (p: string) => JSON.stringify(pathToFileURL(path.join(root, p)).href);
      fs.writeFileSync(
        script,
        [
          `import { Network } from ${url('core/network.ts')};`,
          `import { saveNetworkFile, loadNetworkFile } from ${url('abi/node/files.ts')};`,
          `const net = Network.fromJSON(${JSON.stringify(CONFIG)}, { seed: 11 });`,
          `const out = ${JSON.stringify(dir)};`,
          `saveNetworkFile(net, out + '/r.safetensors');`,
          `saveNetworkFile(loadNetworkFile(out + '/r.safetensors'), out + '/r.json');`,
        ].join('\n'),
      );
      const r = spawnSync(bin, [...args, script], { cwd: dir, encoding: 'utf8', timeout: 90_000 });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      const net = Network.fromJSON(CONFIG, { seed: 11 });
      expect(sha(fs.readFileSync(path.join(dir, 'r.safetensors')))).toBe(sha(saveNetworkSafetensors(net)));
      expect(fs.readFileSync(path.join(dir, 'r.json'), 'utf8')).toBe(saveNetworkJSON(net));
      expect(ls()).toEqual(['r.json', 'r.safetensors', 'save.ts']);
    });
  }
});
