/*
 * Prints the bits of forward, grad, save, train and load results through libheddle, one
 * `name hex` line each, for bindings/c/c.test.ts to compare with the TS core run
 * in-process (the inputs come from the same xorshift32 generator as abi/engine/testing.ts).
 * Exits non-zero if a call fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heddle.h"

static const char *CONFIG =
    "{\"layers\":[{\"type\":\"dense\",\"input_height\":5,\"output_height\":7,\"activation\":\"tanh\"},"
    "{\"type\":\"dense\",\"input_height\":7,\"output_height\":6,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"input_height\":6,\"output_height\":3}]}";

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

static void hex(const char *name, const void *data, size_t n) {
  const unsigned char *p = (const unsigned char *)data;
  size_t i;
  printf("%s ", name);
  for (i = 0; i < n; i++) printf("%02x", p[i]);
  printf("\n");
}

#define MUST(expr)                                                                        \
  do {                                                                                    \
    heddle_status s_ = (expr);                                                            \
    if (s_ != HEDDLE_OK) {                                                                \
      fprintf(stderr, "%s failed: %s\n", #expr, heddle_last_error());                     \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

static void save_hex(heddle_network *n, heddle_format f, const char *name) {
  size_t need = 0;
  void *buf;
  if (heddle_network_save(n, f, NULL, 0, &need) != HEDDLE_E_BUFFER_TOO_SMALL) {
    fprintf(stderr, "save: %s\n", heddle_last_error());
    exit(1);
  }
  buf = malloc(need);
  MUST(heddle_network_save(n, f, buf, need, &need));
  hex(name, buf, need);
  free(buf);
}

int main(void) {
  heddle_engine *e = NULL;
  heddle_network *n = NULL, *t = NULL, *l = NULL;
  float x[20], dy[12], y[12], dx[20], dw[200], inputs[30], targets[18], losses[3];
  int64_t ishape[2] = {6, 5}, tshape[2] = {6, 3};
  heddle_tensor ti, tt;
  heddle_train_options o;
  heddle_train_result r;
  size_t need = 0, pc;
  void *trained;

  MUST(heddle_engine_start(NULL, NULL, &e));
  values(x, 20, 11);
  values(dy, 12, 12);
  values(inputs, 30, 13);
  values(targets, 18, 14);

  MUST(heddle_network_create(e, CONFIG, 7, &n));
  pc = heddle_network_parameter_count(n);
  MUST(heddle_network_forward(n, x, 4, y, 12));
  hex("forward", y, sizeof y);
  MUST(heddle_network_grad(n, x, 4, dy, dx, 20, dw, 200));
  hex("input_grad", dx, sizeof dx);
  hex("weight_grads", dw, pc * sizeof(float));
  save_hex(n, HEDDLE_FORMAT_SAFETENSORS, "save_safetensors");
  save_hex(n, HEDDLE_FORMAT_JSON, "save_json");

  MUST(heddle_network_create(e, CONFIG, 7, &t));
  ti.dtype = HEDDLE_DTYPE_F32, ti.rank = 2, ti.shape = ishape, ti.data = inputs, ti.nbytes = sizeof inputs;
  tt.dtype = HEDDLE_DTYPE_F32, tt.rank = 2, tt.shape = tshape, tt.data = targets, tt.nbytes = sizeof targets;
  heddle_train_options_init(&o);
  o.epochs = 3;
  o.batch_size = 4;
  o.loss = "mse";
  o.optimizer_json = "{\"type\":\"adamw\",\"lr\":0.01}";
  o.shuffle = 1;
  o.seed = 5;
  o.epoch_losses = losses;
  o.epoch_losses_cap = 3;
  MUST(heddle_network_train(t, &ti, &tt, &o, NULL, NULL, &r));
  hex("train_losses", losses, sizeof losses);
  heddle_network_save(t, HEDDLE_FORMAT_SAFETENSORS, NULL, 0, &need);
  trained = malloc(need);
  MUST(heddle_network_save(t, HEDDLE_FORMAT_SAFETENSORS, trained, need, &need));
  hex("trained_safetensors", trained, need);
  MUST(heddle_network_load(e, HEDDLE_FORMAT_SAFETENSORS, trained, need, NULL, &l));
  MUST(heddle_network_forward(l, x, 4, y, 12));
  hex("loaded_forward", y, sizeof y);
  free(trained);

  {
    /* loss of the untrained network, then weights replaced from the generator, then forward */
    float target[12], lv, g[12];
    int64_t yshape[2] = {4, 3};
    heddle_tensor ty;
    const char *names[8];
    heddle_tensor ws[8];
    float *data[8];
    size_t i, k = heddle_network_parameter_tensors(n);
    values(target, 12, 15);
    ty.dtype = HEDDLE_DTYPE_F32, ty.rank = 2, ty.shape = yshape, ty.data = target, ty.nbytes = sizeof target;
    MUST(heddle_network_loss(n, x, 4, &ty, "mse", &lv, g, 12));
    hex("loss", &lv, sizeof lv);
    hex("loss_output_grad", g, sizeof g);
    for (i = 0; i < k && i < 8; i++) {
      size_t r = heddle_network_parameter_rank(n, i), j, cnt = 1;
      const int64_t *sh = heddle_network_parameter_shape(n, i);
      for (j = 0; j < r; j++) cnt *= (size_t)sh[j];
      data[i] = malloc(cnt * sizeof(float));
      values(data[i], cnt, (uint32_t)(50 + i));
      names[i] = heddle_network_parameter_name(n, i);
      ws[i].dtype = HEDDLE_DTYPE_F32, ws[i].rank = r, ws[i].shape = sh, ws[i].data = data[i], ws[i].nbytes = cnt * sizeof(float);
    }
    MUST(heddle_network_set_weights(n, names, ws, k, 1));
    MUST(heddle_network_forward(n, x, 4, y, 12));
    hex("set_weights_forward", y, sizeof y);
    for (i = 0; i < k && i < 8; i++) free(data[i]);
  }
  MUST(heddle_network_free(n));
  MUST(heddle_network_free(t));
  MUST(heddle_network_free(l));
  heddle_engine_close(e);
  return 0;
}
