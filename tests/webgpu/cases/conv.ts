/** GPU check cases: conv (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

export function convCases(quick: boolean, large: boolean): CheckCase[] {
  void quick;
  void large;
  return [];
}
