/**
 * Change counters for parameter tensors, so a backend that keeps copies of the weights (the
 * WebGPU backend keeps them resident on the device) knows when to upload them again.
 *
 * Every writer of parameter values inside Heddle marks what it changed: Network.setWeights
 * (and so loading), the optimizers' step. Code that writes `param.value.data` directly must
 * call Network.markWeightsChanged() (or markChanged on the tensor) before the next forward.
 */
const counts = new WeakMap<object, number>();

/** Records that the values of `tensor` (a parameter's value) changed. */
export function markChanged(tensor: object): void {
  counts.set(tensor, (counts.get(tensor) ?? 0) + 1);
}

/** How many times `tensor` was marked changed (0 if never). */
export function changeCount(tensor: object): number {
  return counts.get(tensor) ?? 0;
}
