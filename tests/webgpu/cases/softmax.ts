/** GPU check cases: softmax (gathered by buildCases in tests/webgpu/checks.ts). */
import type { CheckCase } from '../checks.ts';

export function softmaxCases(quick: boolean, large: boolean): CheckCase[] {
  void quick;
  void large;
  return [];
}
