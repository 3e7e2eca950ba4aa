/** GPU check cases: attention (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

export function attentionCases(quick: boolean, large: boolean): CheckCase[] {
  void quick;
  void large;
  return [];
}
