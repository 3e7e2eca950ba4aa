import { defineConfig } from 'tsup';

// core: the browser-safe library (ESM + .d.ts); cli and bench: Node entry points.
export default defineConfig([
  {
    entry: { 'core/index': 'core/index.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    platform: 'neutral',
    target: 'es2022',
    outDir: 'dist',
  },
  {
    entry: { cli: 'abi/cli/main.ts', 'bench-dense': 'scripts/bench-dense.ts', 'bench-webgpu': 'scripts/bench-webgpu.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    outDir: 'dist',
    sourcemap: true,
    banner: { js: '#!/usr/bin/env node' },
    noExternal: [],
  },
  {
    // The engine process as one self-contained file (flatbuffers bundled in) that the
    // wrappers run with node, bun or deno: `node dist/heddle-engine.mjs`.
    entry: { 'heddle-engine': 'abi/engine/bin.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    outDir: 'dist',
    outExtension: () => ({ js: '.mjs' }),
    sourcemap: false,
    noExternal: [/.*/],
    // Keep `node:` specifiers: Deno resolves builtins only with the prefix.
    removeNodeProtocol: false,
  },
]);
