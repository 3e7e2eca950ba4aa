import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'abi/**/*.test.ts', 'tests/**/*.test.ts', 'scripts/**/*.test.ts', 'bindings/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Two cores on CI: keep worker count small so cross-runtime tests do not starve.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
