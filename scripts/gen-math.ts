/**
 * Regenerates core/math/generated.ts from the math IR (core/math/routines.ts).
 *   npx deno run -A scripts/gen-math.ts      or      npx bun scripts/gen-math.ts
 * core/math/generated.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { emitTypeScript } from '../core/math/emit-js.ts';
import { ROUTINES } from '../core/math/routines.ts';

const out = new URL('../core/math/generated.ts', import.meta.url);
writeFileSync(out, emitTypeScript(ROUTINES));
console.log(`wrote ${out.pathname}`);
