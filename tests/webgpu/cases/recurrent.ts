/** GPU check cases: recurrent (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

export function recurrentCases(quick: boolean, large: boolean): CheckCase[] {
  void quick;
  void large;
  return [];
}
