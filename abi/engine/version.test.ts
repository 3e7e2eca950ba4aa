import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO } from './testing.ts';
import { ENGINE_VERSION } from './version.ts';

it('ENGINE_VERSION is the package version', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  expect(ENGINE_VERSION).toBe(pkg.version);
  const header = readFileSync(join(REPO, 'bindings/c/include/heddle.h'), 'utf8');
  expect(header).toContain(`#define HEDDLE_LIB_VERSION "${pkg.version}"`);
});
