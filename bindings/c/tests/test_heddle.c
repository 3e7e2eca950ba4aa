/*
 * libheddle API tests (ctest `api`): every call, its error statuses, caller-owned buffers,
 * NULL-safe frees, engine death and restart, start failures, timeouts and the socket
 * transport. Needs an engine: HEDDLE_ENGINE, or HEDDLE_ENGINE_BUNDLE run with node.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <spawn.h>

#include "heddle.h"

extern char **environ;

static int failures = 0;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              heddle_last_error());                                                      \
      failures++;                                                                        \
    }                                                                                    \
  } while (0)

#define CHECK_STATUS(expr, want)                                                                              \
  do {                                                                                                        \
    heddle_status got_ = (expr);                                                                              \
    if (got_ != (want)) {                                                                                     \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", __FILE__, __LINE__, #expr,    \
              heddle_status_name(got_), heddle_status_name(want), heddle_last_error());                       \
      failures++;                                                                                             \
    }                                                                                                         \
  } while (0)

static const char *CONFIG =
    "{\"layers\":[{\"type\":\"dense\",\"input_height\":4,\"output_height\":8,\"activation\":\"tanh\"},"
    "{\"type\":\"dense\",\"input_height\":8,\"output_height\":3}]}";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static heddle_engine *start(void) {
  heddle_engine *e = NULL;
  CHECK_STATUS(heddle_engine_start(NULL, NULL, &e), HEDDLE_OK);
  if (!e) {
    fprintf(stderr, "cannot start an engine: %s\n", heddle_last_error());
    exit(1);
  }
  return e;
}

static void test_library(void) {
  CHECK(strcmp(heddle_status_name(HEDDLE_OK), "OK") == 0);
  CHECK(strcmp(heddle_status_name(HEDDLE_E_HANDLE_STALE), "HANDLE_STALE") == 0);
  CHECK(strcmp(heddle_status_name((heddle_status)4242), "UNKNOWN") == 0);
  CHECK(strlen(heddle_status_doc(HEDDLE_E_ENGINE_EXITED)) > 10);
  CHECK(strcmp(heddle_version(), HEDDLE_LIB_VERSION) == 0);
  /* NULL-safe frees. */
  heddle_engine_close(NULL);
  CHECK_STATUS(heddle_network_free(NULL), HEDDLE_OK);
  CHECK_STATUS(heddle_optimizer_free(NULL), HEDDLE_OK);
}

static void test_network(heddle_engine *e) {
  char info[4096];
  size_t len = 0;
  CHECK_STATUS(heddle_engine_info(e, info, sizeof info, &len), HEDDLE_OK);
  CHECK(strstr(info, "\"abi_version\":\"" HEDDLE_ABI_VERSION_STRING "\"") != NULL);
  CHECK_STATUS(heddle_engine_info(e, info, 3, &len), HEDDLE_E_BUFFER_TOO_SMALL);
  CHECK(len > 3);

  heddle_network *bad = NULL;
  CHECK_STATUS(heddle_network_create(e, "{\"layers\":[{\"type\":\"dense\",\"input_height\":4,\"output_height\":-1}]}", 0, &bad), HEDDLE_E_CONFIG_INVALID);
  CHECK(bad == NULL);
  CHECK(strstr(heddle_last_error(), "output_height") != NULL);
  CHECK(strstr(heddle_engine_last_error(e), "CONFIG_INVALID") != NULL);
  CHECK(heddle_last_status() == HEDDLE_E_CONFIG_INVALID);
  CHECK(heddle_engine_alive(e));

  heddle_network *n = NULL;
  CHECK_STATUS(heddle_network_create(e, CONFIG, 42, &n), HEDDLE_OK);
  if (!n) return;
  CHECK(heddle_network_input_rank(n) == 1 && heddle_network_input_shape(n)[0] == 4);
  CHECK(heddle_network_output_size(n) == 3);
  CHECK(heddle_network_parameter_count(n) == 4 * 8 + 8 + 8 * 3 + 3);
  CHECK(heddle_network_parameter_tensors(n) == 4);
  CHECK(strcmp(heddle_network_parameter_name(n, 0), "layers.0.weight") == 0);
  CHECK(heddle_network_parameter_rank(n, 0) == 2 && heddle_network_parameter_shape(n, 0)[0] == 8);
  CHECK(heddle_network_parameter_name(n, 99) == NULL);

  float x[8] = {0.1f, -0.2f, 0.3f, 0.4f, 1.0f, 0.5f, -0.5f, 0.0f};
  float y[6], y2[6];
  CHECK_STATUS(heddle_network_forward(n, x, 2, y, 6), HEDDLE_OK);
  CHECK_STATUS(heddle_network_forward(n, x, 2, y, 5), HEDDLE_E_BUFFER_TOO_SMALL);
  CHECK_STATUS(heddle_network_forward(n, NULL, 2, y, 6), HEDDLE_E_CLIENT_ARGUMENT_INVALID);
  x[1] = NAN;
  CHECK_STATUS(heddle_network_forward(n, x, 1, y2, 6), HEDDLE_E_INPUT_INVALID);
  x[1] = -0.2f;

  /* The general tensor call: a wrong shape is the engine's SHAPE_MISMATCH, wrong bytes TENSOR_INVALID. */
  int64_t shape[2] = {2, 4};
  heddle_tensor t = {HEDDLE_DTYPE_F32, 2, shape, x, sizeof x};
  size_t count = 0;
  CHECK_STATUS(heddle_network_forward_tensor(n, &t, y2, 6, &count), HEDDLE_OK);
  CHECK(count == 6 && memcmp(y, y2, sizeof y) == 0);
  t.nbytes = 12;
  CHECK_STATUS(heddle_network_forward_tensor(n, &t, y2, 6, &count), HEDDLE_E_TENSOR_INVALID);
  int64_t shape3[2] = {2, 3};
  heddle_tensor t3 = {HEDDLE_DTYPE_F32, 2, shape3, x, 24};
  CHECK_STATUS(heddle_network_forward_tensor(n, &t3, y2, 6, &count), HEDDLE_E_SHAPE_MISMATCH);
  int32_t ids[8] = {0};
  heddle_tensor ti = {HEDDLE_DTYPE_I32, 2, shape, ids, sizeof ids};
  CHECK_STATUS(heddle_network_forward_tensor(n, &ti, y2, 6, &count), HEDDLE_E_DTYPE_INVALID);

  /* Pipelined forwards equal one-by-one forwards. */
  float xs[5 * 4], ys[5 * 3], one[3];
  int i;
  for (i = 0; i < 20; i++) xs[i] = (float)i / 10.0f - 1.0f;
  CHECK_STATUS(heddle_network_forward_pipelined(n, xs, 1, 5, ys, 15), HEDDLE_OK);
  for (i = 0; i < 5; i++) {
    CHECK_STATUS(heddle_network_forward(n, xs + 4 * i, 1, one, 3), HEDDLE_OK);
    CHECK(memcmp(one, ys + 3 * i, sizeof one) == 0);
  }
  xs[6] = INFINITY; /* the second call fails, the others are still answered */
  CHECK_STATUS(heddle_network_forward_pipelined(n, xs, 1, 5, ys, 15), HEDDLE_E_INPUT_INVALID);
  CHECK_STATUS(heddle_network_forward(n, x, 2, y2, 6), HEDDLE_OK);
  CHECK(memcmp(y, y2, sizeof y) == 0);

  /* Gradients. */
  float gy[6] = {1, 0, -1, 0.5f, 0.25f, 0}, gx[8], gw[67];
  CHECK_STATUS(heddle_network_grad(n, x, 2, gy, gx, 8, gw, 67), HEDDLE_OK);
  CHECK_STATUS(heddle_network_grad(n, x, 2, gy, gx, 8, gw, 10), HEDDLE_E_BUFFER_TOO_SMALL);
  CHECK_STATUS(heddle_network_grad(n, x, 2, gy, gx, 8, NULL, 0), HEDDLE_OK);
  int32_t labels[2] = {2, 0};
  int64_t lshape[1] = {2};
  heddle_tensor target = {HEDDLE_DTYPE_I32, 1, lshape, labels, sizeof labels};
  float loss = -1;
  CHECK_STATUS(heddle_network_grad_loss(n, x, 2, &target, "cross_entropy", &loss, gx, 8, gw, 67), HEDDLE_OK);
  CHECK(loss > 0);
  labels[0] = 7;
  CHECK_STATUS(heddle_network_grad_loss(n, x, 2, &target, "cross_entropy", &loss, gx, 8, NULL, 0), HEDDLE_E_INPUT_INVALID);
  labels[0] = 2;

  /* Optimizers. */
  heddle_optimizer *opt = NULL;
  uint64_t steps = 0;
  CHECK_STATUS(heddle_optimizer_create(n, "{\"type\":\"nope\"}", &opt), HEDDLE_E_CONFIG_INVALID);
  CHECK_STATUS(heddle_optimizer_create(n, "{\"type\":\"sgd\",\"lr\":0.1,\"momentum\":0.9}", &opt), HEDDLE_OK);
  CHECK_STATUS(heddle_network_grad_loss(n, x, 2, &target, "cross_entropy", &loss, gx, 8, NULL, 0), HEDDLE_OK);
  CHECK_STATUS(heddle_optimizer_step(opt, NAN, &steps), HEDDLE_OK);
  CHECK(steps == 1);
  CHECK_STATUS(heddle_optimizer_step(opt, 0.01, &steps), HEDDLE_OK);
  CHECK(steps == 2);
  CHECK_STATUS(heddle_network_forward(n, x, 2, y2, 6), HEDDLE_OK);
  CHECK(memcmp(y, y2, sizeof y) != 0); /* the weights moved */
  {
    size_t k, count = 0, rank = 0;
    CHECK_STATUS(heddle_optimizer_state(opt, &steps, &k), HEDDLE_OK);
    CHECK(steps == 2 && k == 4); /* momentum_buffer per parameter */
    CHECK(strcmp(heddle_optimizer_state_name(opt, 0), "layers.0.weight.momentum_buffer") == 0);
    CHECK(heddle_optimizer_state_data(opt, 0, &count) != NULL && count == 32);
    CHECK(heddle_optimizer_state_shape(opt, 0, &rank) != NULL && rank == 2);
    CHECK(heddle_optimizer_state_name(opt, 9) == NULL);
  }
  /* Weights: get, replace one (all-or-nothing), put them back. */
  {
    float w[67], w2[67], ones[32];
    int64_t wshape[2] = {8, 4}, bad_shape[2] = {4, 8};
    const char *names[2] = {"layers.0.weight", "nope"};
    heddle_tensor ts[2];
    for (i = 0; i < 32; i++) ones[i] = 1.0f;
    ts[0].dtype = HEDDLE_DTYPE_F32, ts[0].rank = 2, ts[0].shape = wshape, ts[0].data = ones, ts[0].nbytes = sizeof ones;
    ts[1] = ts[0];
    CHECK_STATUS(heddle_network_get_weights(n, w, 67), HEDDLE_OK);
    CHECK_STATUS(heddle_network_get_weights(n, w, 66), HEDDLE_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(heddle_network_set_weights(n, names, ts, 2, 0), HEDDLE_E_WEIGHTS_INVALID);
    CHECK_STATUS(heddle_network_set_weights(n, names, ts, 1, 1), HEDDLE_E_WEIGHTS_INVALID);
    ts[0].shape = bad_shape;
    CHECK_STATUS(heddle_network_set_weights(n, names, ts, 1, 0), HEDDLE_E_WEIGHTS_INVALID);
    CHECK_STATUS(heddle_network_get_weights(n, w2, 67), HEDDLE_OK);
    CHECK(memcmp(w, w2, sizeof w) == 0);
    ts[0].shape = wshape;
    CHECK_STATUS(heddle_network_set_weights(n, names, ts, 1, 0), HEDDLE_OK);
    CHECK_STATUS(heddle_network_get_weights(n, w2, 67), HEDDLE_OK);
    CHECK(w2[0] == 1.0f && w2[31] == 1.0f && memcmp(w + 32, w2 + 32, 35 * sizeof(float)) == 0);
    ts[0].data = w;
    CHECK_STATUS(heddle_network_set_weights(n, names, ts, 1, 0), HEDDLE_OK);
  }
  /* Loss: value and dLoss/dOutput, nothing changes. */
  {
    float l1 = 0, l2 = 0, g[6];
    CHECK_STATUS(heddle_network_loss(n, x, 2, &target, "cross_entropy", &l1, g, 6), HEDDLE_OK);
    CHECK_STATUS(heddle_network_loss(n, x, 2, &target, "cross_entropy", &l2, NULL, 0), HEDDLE_OK);
    CHECK(l1 == l2 && l1 > 0);
    CHECK_STATUS(heddle_network_loss(n, x, 2, &target, "cross_entropy", &l2, g, 5), HEDDLE_E_BUFFER_TOO_SMALL);
  }

  /* Training with progress. */
  float inputs[6 * 4], targets[6 * 3], losses[4];
  for (i = 0; i < 24; i++) inputs[i] = (float)((i * 7) % 11) / 11.0f;
  for (i = 0; i < 18; i++) targets[i] = (float)(i % 3 == 0);
  int64_t ishape[2] = {6, 4}, tshape[2] = {6, 3};
  heddle_tensor ti2 = {HEDDLE_DTYPE_F32, 2, ishape, inputs, sizeof inputs};
  heddle_tensor tt2 = {HEDDLE_DTYPE_F32, 2, tshape, targets, sizeof targets};
  heddle_train_options to;
  heddle_train_options_init(&to);
  to.epochs = 4;
  to.batch_size = 4;
  to.optimizer_json = "{\"type\":\"adamw\",\"lr\":0.01}";
  to.epoch_losses = losses;
  to.epoch_losses_cap = 4;
  heddle_train_result res;
  CHECK_STATUS(heddle_network_train(n, &ti2, &tt2, &to, NULL, NULL, &res), HEDDLE_OK);
  CHECK(res.steps == 8 && res.epochs == 4 && res.final_loss == losses[3]);
  to.optimizer_json = NULL;
  to.optimizer = opt; /* carry on with the sgd optimizer's state */
  CHECK_STATUS(heddle_network_train(n, &ti2, &tt2, &to, NULL, NULL, &res), HEDDLE_OK);
  to.loss = "hinge";
  CHECK_STATUS(heddle_network_train(n, &ti2, &tt2, &to, NULL, NULL, &res), HEDDLE_E_CONFIG_INVALID);

  /* Save (too small, then from the kept bytes), load, same outputs. */
  size_t need = 0;
  char small[8];
  CHECK_STATUS(heddle_network_save(n, HEDDLE_FORMAT_SAFETENSORS, small, sizeof small, &need), HEDDLE_E_BUFFER_TOO_SMALL);
  CHECK(need > 100);
  void *bytes = malloc(need);
  size_t got = 0;
  CHECK_STATUS(heddle_network_save(n, HEDDLE_FORMAT_SAFETENSORS, bytes, need, &got), HEDDLE_OK);
  CHECK(got == need);
  heddle_network *m = NULL;
  CHECK_STATUS(heddle_network_load(e, HEDDLE_FORMAT_SAFETENSORS, bytes, got, NULL, &m), HEDDLE_OK);
  CHECK_STATUS(heddle_network_forward(n, x, 2, y, 6), HEDDLE_OK);
  CHECK_STATUS(heddle_network_forward(m, x, 2, y2, 6), HEDDLE_OK);
  CHECK(memcmp(y, y2, sizeof y) == 0);
  heddle_network *broken = NULL;
  CHECK_STATUS(heddle_network_load(e, HEDDLE_FORMAT_SAFETENSORS, bytes, got / 2, NULL, &broken), HEDDLE_E_FORMAT_INVALID);
  CHECK(broken == NULL);
  free(bytes);
  char json[65536];
  CHECK_STATUS(heddle_network_save(m, HEDDLE_FORMAT_JSON, json, sizeof json, &got), HEDDLE_OK);
  CHECK(got > 0 && strncmp(json, "{\"format\":\"heddle-network\"", 26) == 0);

  char desc[8192];
  CHECK_STATUS(heddle_network_describe(m, desc, sizeof desc, &got), HEDDLE_OK);
  CHECK(strstr(desc, "\"total_parameters\":67") != NULL && strlen(desc) == got);

  CHECK_STATUS(heddle_engine_set_backend(e, "cpu"), HEDDLE_OK);
  /* "webgpu" depends on the adapters the engine finds: tests/webgpu.c */
  CHECK_STATUS(heddle_network_morph_dtype(m, HEDDLE_DTYPE_F32), HEDDLE_OK);
  CHECK_STATUS(heddle_network_morph_dtype(m, HEDDLE_DTYPE_BF16), HEDDLE_E_UNSUPPORTED);

  /* Freeing the network frees its optimizer in the engine; freeing the C object is still fine. */
  CHECK_STATUS(heddle_network_free(n), HEDDLE_OK);
  CHECK_STATUS(heddle_optimizer_free(opt), HEDDLE_OK);
  CHECK_STATUS(heddle_network_free(m), HEDDLE_OK);
}

static void test_engine_death(void) {
  heddle_engine *e = start();
  heddle_network *n = NULL;
  CHECK_STATUS(heddle_network_create(e, CONFIG, 1, &n), HEDDLE_OK);
  float x[4] = {1, 2, 3, 4}, y[3];
  CHECK_STATUS(heddle_network_forward(n, x, 1, y, 3), HEDDLE_OK);
  CHECK(heddle_engine_pid(e) > 0);
  kill((pid_t)heddle_engine_pid(e), SIGKILL);
  double t0 = now_s();
  CHECK_STATUS(heddle_network_forward(n, x, 1, y, 3), HEDDLE_E_ENGINE_EXITED);
  CHECK(now_s() - t0 < 2.0);
  CHECK(strstr(heddle_last_error(), "killed by signal 9") != NULL);
  CHECK(!heddle_engine_alive(e));
  CHECK_STATUS(heddle_network_forward(n, x, 1, y, 3), HEDDLE_E_ENGINE_EXITED);
  CHECK_STATUS(heddle_network_free(n), HEDDLE_OK);
  heddle_engine_close(e);

  /* A new engine starts and works. */
  e = start();
  CHECK_STATUS(heddle_network_create(e, CONFIG, 1, &n), HEDDLE_OK);
  CHECK_STATUS(heddle_network_forward(n, x, 1, y, 3), HEDDLE_OK);
  /* Closing the engine first leaves the network object safe to use (CLOSED) and to free. */
  heddle_engine_close(e);
  CHECK_STATUS(heddle_network_forward(n, x, 1, y, 3), HEDDLE_E_CLOSED);
  CHECK_STATUS(heddle_network_free(n), HEDDLE_OK);
}

static void test_start_failures(void) {
  heddle_engine *e = NULL;
  const char *missing[] = {"/nonexistent/heddle-engine", NULL};
  CHECK_STATUS(heddle_engine_start(missing, NULL, &e), HEDDLE_E_ENGINE_START_FAILED);
  CHECK(e == NULL);
  CHECK(strstr(heddle_last_error(), "No such file") != NULL);
  const char *exits[] = {"sh", "-c", "exit 3", NULL};
  CHECK_STATUS(heddle_engine_start(exits, NULL, &e), HEDDLE_E_ENGINE_START_FAILED);
  CHECK(strstr(heddle_last_error(), "status 3") != NULL);
  /* An engine that never answers: bounded by timeout_ms. */
  heddle_engine_options o;
  heddle_engine_options_init(&o);
  o.timeout_ms = 300;
  const char *silent[] = {"sleep", "30", NULL};
  double t0 = now_s();
  CHECK_STATUS(heddle_engine_start(silent, &o, &e), HEDDLE_E_TIMEOUT);
  CHECK(now_s() - t0 < 5.0);
  o.runtime = "perl";
  {
    const char *cmd = getenv("HEDDLE_ENGINE"); /* a command overrides runtime + bundle */
    CHECK_STATUS(heddle_engine_start(NULL, &o, &e), cmd && *cmd ? HEDDLE_OK : HEDDLE_E_CLIENT_ARGUMENT_INVALID);
  }
  heddle_engine_close(e);
}

/* The socket transport: a served engine, two clients, handles per connection. */
static void test_socket(void) {
  const char *bundle = getenv("HEDDLE_ENGINE_BUNDLE");
  if (!bundle || !*bundle) {
    fprintf(stderr, "test_socket: skipped (HEDDLE_ENGINE_BUNDLE unset)\n");
    return;
  }
  char path[64];
  snprintf(path, sizeof path, "/tmp/heddle-ctest-%d.sock", (int)getpid());
  unlink(path);
  char *argv[] = {"node", (char *)bundle, "--socket", path, NULL};
  pid_t pid;
  CHECK(posix_spawnp(&pid, "node", NULL, NULL, argv, environ) == 0);
  heddle_engine *a = NULL, *b = NULL;
  int tries;
  for (tries = 0; tries < 500; tries++) {
    if (heddle_engine_connect(path, NULL, &a) == HEDDLE_OK) break;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  CHECK(a != NULL);
  CHECK_STATUS(heddle_engine_connect(path, NULL, &b), HEDDLE_OK);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  if (a && b) {
    heddle_network *na = NULL, *nb = NULL;
    CHECK_STATUS(heddle_network_create(a, CONFIG, 1, &na), HEDDLE_OK);
    CHECK_STATUS(heddle_network_create(b, CONFIG, 1, &nb), HEDDLE_OK);
    float x[4] = {1, 2, 3, 4}, ya[3], yb[3];
    CHECK_STATUS(heddle_network_forward(na, x, 1, ya, 3), HEDDLE_OK);
    CHECK_STATUS(heddle_network_forward(nb, x, 1, yb, 3), HEDDLE_OK);
    CHECK(memcmp(ya, yb, sizeof ya) == 0);
    CHECK(heddle_engine_pid(a) == -1);
    heddle_engine_close(a);
    CHECK_STATUS(heddle_network_forward(nb, x, 1, yb, 3), HEDDLE_OK);
    CHECK_STATUS(heddle_network_free(na), HEDDLE_OK);
    CHECK_STATUS(heddle_network_free(nb), HEDDLE_OK);
    heddle_engine_close(b);
  }
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  heddle_engine *c = NULL;
  CHECK_STATUS(heddle_engine_connect(path, NULL, &c), HEDDLE_E_CONNECT_FAILED);
}

int main(void) {
  test_library();
  heddle_engine *e = start();
  test_network(e);
  heddle_engine_close(e);
  test_engine_death();
  test_start_failures();
  test_socket();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("libheddle api tests passed\n");
  return 0;
}
