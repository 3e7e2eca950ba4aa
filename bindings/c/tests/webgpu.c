/*
 * The webgpu backend through libheddle (ctest `webgpu`): after heddle_engine_set_backend(e,
 * "webgpu"), forward, grad, grad_loss, loss, an optimizer step and train give exactly the bits
 * of the same calls after set_backend "cpu"; with no Vulkan driver, "webgpu" is
 * HEDDLE_E_BACKEND_UNAVAILABLE and the engine stays on the cpu.
 *
 * The engine (HEDDLE_ENGINE, or HEDDLE_ENGINE_BUNDLE run with node) inherits this process's
 * environment, which picks the adapter: SwiftShader for Dawn (Node, Bun), lavapipe for Deno
 * (when HEDDLE_ENGINE names deno; DENO_WEBGPU_BACKEND=vulkan keeps wgpu off OpenGL).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heddle.h"

static const char *CONFIG =
    "{\"layers\":[{\"type\":\"dense\",\"input_height\":5,\"output_height\":7,\"activation\":\"tanh\"},"
    "{\"type\":\"layer_norm\",\"norm_size\":7},"
    "{\"type\":\"dense\",\"input_height\":7,\"output_height\":7,\"activation\":\"gelu\"},"
    "{\"type\":\"residual\"},"
    "{\"type\":\"dense\",\"input_height\":7,\"output_height\":3}]}";

#define MUST(expr)                                                                        \
  do {                                                                                    \
    heddle_status s_ = (expr);                                                            \
    if (s_ != HEDDLE_OK) {                                                                \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, heddle_last_error()); \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

static void values(float *out, size_t n, uint32_t seed) {
  uint32_t s = seed ? seed : 1;
  size_t i;
  for (i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    out[i] = (float)((double)s / 2147483648.0 - 1.0);
  }
}

/* The results of one run, by name, in call order. */
#define MAX_RESULTS 32
typedef struct {
  const char *name[MAX_RESULTS];
  void *data[MAX_RESULTS];
  size_t bytes[MAX_RESULTS];
  size_t n;
} results;

static void keep(results *r, const char *name, const void *data, size_t bytes) {
  if (r->n == MAX_RESULTS) {
    fprintf(stderr, "too many results\n");
    exit(1);
  }
  r->name[r->n] = name;
  r->data[r->n] = malloc(bytes ? bytes : 1);
  memcpy(r->data[r->n], data, bytes);
  r->bytes[r->n] = bytes;
  r->n++;
}

static float step_losses[16];
static size_t step_count;

static void on_progress(const heddle_train_progress *p, void *user) {
  (void)user;
  if (step_count < 16) step_losses[step_count++] = p->loss;
}

static void calls(heddle_engine *e, results *r) {
  heddle_network *n = NULL, *t = NULL;
  heddle_optimizer *opt = NULL;
  float x[20], dy[12], target[12], y[12], dx[20], dw[256], lv, g[12], inputs[55], targets[33], losses[2], w[256], state[1024];
  int64_t tshape[2] = {4, 3}, ishape[2] = {11, 5}, oshape[2] = {11, 3};
  heddle_tensor tt, ti, to;
  heddle_train_options o;
  heddle_train_result tr;
  uint64_t step = 0;
  size_t pc, k, i, used = 0;

  values(x, 20, 11);
  values(dy, 12, 12);
  values(target, 12, 13);
  values(inputs, 55, 21);
  values(targets, 33, 22);
  tt.dtype = HEDDLE_DTYPE_F32, tt.rank = 2, tt.shape = tshape, tt.data = target, tt.nbytes = sizeof target;

  MUST(heddle_network_create(e, CONFIG, 7, &n));
  pc = heddle_network_parameter_count(n);
  if (pc > 256) {
    fprintf(stderr, "the network has %zu weights\n", pc);
    exit(1);
  }
  MUST(heddle_network_forward(n, x, 4, y, 12));
  keep(r, "forward", y, sizeof y);
  MUST(heddle_network_grad(n, x, 4, dy, dx, 20, dw, 256));
  keep(r, "input_grad", dx, sizeof dx);
  keep(r, "weight_grads", dw, pc * sizeof(float));
  MUST(heddle_network_grad_loss(n, x, 4, &tt, "mse", &lv, dx, 20, dw, 256));
  keep(r, "grad_loss", &lv, sizeof lv);
  keep(r, "grad_loss_input_grad", dx, sizeof dx);
  keep(r, "grad_loss_weight_grads", dw, pc * sizeof(float));
  MUST(heddle_network_loss(n, x, 4, &tt, "mse", &lv, g, 12));
  keep(r, "loss", &lv, sizeof lv);
  keep(r, "loss_output_grad", g, sizeof g);
  /* the host's new weights are the ones the next GPU pass uses */
  MUST(heddle_optimizer_create(n, "{\"type\":\"adamw\",\"lr\":0.01}", &opt));
  MUST(heddle_optimizer_step(opt, -1, &step));
  MUST(heddle_network_forward(n, x, 4, y, 12));
  keep(r, "forward_after_step", y, sizeof y);
  MUST(heddle_network_get_weights(n, w, 256));
  keep(r, "step_weights", w, pc * sizeof(float));
  MUST(heddle_optimizer_state(opt, &step, &k));
  for (i = 0; i < k; i++) {
    size_t cnt = 0;
    const float *d = heddle_optimizer_state_data(opt, i, &cnt);
    if (used + cnt > 1024) break;
    memcpy(state + used, d, cnt * sizeof(float));
    used += cnt;
  }
  keep(r, "optimizer_state", state, used * sizeof(float));
  MUST(heddle_optimizer_free(opt));
  MUST(heddle_network_free(n));

  MUST(heddle_network_create(e, CONFIG, 7, &t));
  ti.dtype = HEDDLE_DTYPE_F32, ti.rank = 2, ti.shape = ishape, ti.data = inputs, ti.nbytes = sizeof inputs;
  to.dtype = HEDDLE_DTYPE_F32, to.rank = 2, to.shape = oshape, to.data = targets, to.nbytes = sizeof targets;
  heddle_train_options_init(&o);
  o.epochs = 2;
  o.batch_size = 4;
  o.loss = "mse";
  o.optimizer_json = "{\"type\":\"adamw\",\"lr\":0.01}";
  o.clip_norm = 0.5;
  o.shuffle = 1;
  o.seed = 5;
  o.epoch_losses = losses;
  o.epoch_losses_cap = 2;
  step_count = 0;
  MUST(heddle_network_train(t, &ti, &to, &o, on_progress, NULL, &tr));
  keep(r, "train_epoch_losses", losses, sizeof losses);
  keep(r, "train_step_losses", step_losses, step_count * sizeof(float));
  MUST(heddle_network_get_weights(t, w, 256));
  keep(r, "trained_weights", w, pc * sizeof(float));
  MUST(heddle_network_forward(t, x, 4, y, 12));
  keep(r, "trained_forward", y, sizeof y);
  MUST(heddle_network_free(t));
}

int main(void) {
  const char *cmd = getenv("HEDDLE_ENGINE");
  int deno = cmd != NULL && strstr(cmd, "deno") != NULL;
  heddle_engine *e = NULL;
  heddle_network *n = NULL;
  results cpu = {0}, gpu = {0};
  size_t i, j;
  int failures = 0;
  float x[10], y0[6], y1[6];

  if (deno) {
    setenv("VK_ICD_FILENAMES", "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", 1);
    setenv("DENO_WEBGPU_BACKEND", "vulkan", 1);
  } else {
    setenv("VK_ICD_FILENAMES", "/usr/lib/chromium/vk_swiftshader_icd.json", 1);
  }
  MUST(heddle_engine_start(NULL, NULL, &e));
  MUST(heddle_engine_set_backend(e, "cpu"));
  calls(e, &cpu);
  MUST(heddle_engine_set_backend(e, "webgpu"));
  calls(e, &gpu);
  heddle_engine_close(e);
  for (i = 0; i < cpu.n; i++) {
    const unsigned char *a = cpu.data[i], *b = gpu.data[i];
    if (cpu.bytes[i] != gpu.bytes[i] || memcmp(a, b, cpu.bytes[i]) != 0) {
      for (j = 0; j < cpu.bytes[i] && a[j] == b[j]; j++) {
      }
      fprintf(stderr, "%s: webgpu differs from cpu (%zu vs %zu bytes, first difference at byte %zu)\n", cpu.name[i], gpu.bytes[i], cpu.bytes[i], j);
      failures++;
    } else {
      printf("%s: same bits (%zu bytes)\n", cpu.name[i], cpu.bytes[i]);
    }
    free(cpu.data[i]);
    free(gpu.data[i]);
  }

  /* No Vulkan driver: BACKEND_UNAVAILABLE with the reason, and the engine stays on the cpu. */
  setenv("VK_ICD_FILENAMES", "/nonexistent/heddle_icd.json", 1);
  setenv("DENO_WEBGPU_BACKEND", "vulkan", 1);
  MUST(heddle_engine_start(NULL, NULL, &e));
  MUST(heddle_network_create(e, CONFIG, 1, &n));
  values(x, 10, 41);
  MUST(heddle_network_forward(n, x, 2, y0, 6));
  if (heddle_engine_set_backend(e, "webgpu") != HEDDLE_E_BACKEND_UNAVAILABLE || strstr(heddle_last_error(), "no adapter") == NULL) {
    fprintf(stderr, "webgpu without a driver: expected BACKEND_UNAVAILABLE naming 'no adapter', got '%s'\n", heddle_last_error());
    failures++;
  }
  MUST(heddle_network_forward(n, x, 2, y1, 6));
  if (memcmp(y0, y1, sizeof y0) != 0) {
    fprintf(stderr, "the forward after a failed set_backend changed\n");
    failures++;
  }
  MUST(heddle_network_free(n));
  heddle_engine_close(e);
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
