/** GPU check cases: tokens (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

export function tokensCases(quick: boolean, large: boolean): CheckCase[] {
  void quick;
  void large;
  return [];
}
