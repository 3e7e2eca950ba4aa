/*
 * Example: start an engine, build a small network, train it on XOR with a progress line
 * per epoch, run it, save it and load it back.
 *
 *   cc train_and_run.c -lheddle -o train_and_run && ./train_and_run
 * The engine: $HEDDLE_ENGINE, else `node $HEDDLE_ENGINE_BUNDLE` (or the bundle path built in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heddle.h"

static int check(heddle_status s, const char *what) {
  if (s != HEDDLE_OK) fprintf(stderr, "%s: %s\n", what, heddle_last_error());
  return s == HEDDLE_OK;
}

static void on_progress(const heddle_train_progress *p, void *user) {
  (void)user;
  if (p->step % p->steps_per_epoch == 0 && (p->epoch + 1) % 50 == 0) {
    printf("epoch %3u  step %4lu/%lu  loss %.6f\n", p->epoch + 1, (unsigned long)p->step, (unsigned long)p->total_steps, p->loss);
  }
}

int main(void) {
  heddle_engine *engine = NULL;
  heddle_network *net = NULL, *copy = NULL;
  float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
  float ys[4] = {0, 1, 1, 0};
  int64_t xshape[2] = {4, 2}, yshape[2] = {4, 1};
  heddle_tensor inputs = {HEDDLE_DTYPE_F32, 2, xshape, xs, sizeof xs};
  heddle_tensor targets = {HEDDLE_DTYPE_F32, 2, yshape, ys, sizeof ys};
  heddle_train_options opts;
  heddle_train_result result;
  float out[4], out2[4];
  char info[1024];
  size_t len;
  void *saved;
  int ok = 1, i;

  if (!check(heddle_engine_start(NULL, NULL, &engine), "start")) return 1;
  if (heddle_engine_info(engine, info, sizeof info, &len) == HEDDLE_OK) printf("engine: %s\n", info);

  ok = ok && check(heddle_network_create(engine,
                                         "{\"layers\":[{\"type\":\"dense\",\"input_height\":2,\"output_height\":8,\"activation\":\"tanh\"},"
                                         "{\"type\":\"dense\",\"input_height\":8,\"output_height\":1}]}",
                                         3, &net),
                   "create");
  heddle_train_options_init(&opts);
  opts.epochs = 300;
  opts.batch_size = 4;
  opts.loss = "mse";
  opts.optimizer_json = "{\"type\":\"adamw\",\"lr\":0.05}";
  ok = ok && check(heddle_network_train(net, &inputs, &targets, &opts, on_progress, NULL, &result), "train");
  if (ok) printf("final loss %.6f after %lu steps\n", result.final_loss, (unsigned long)result.steps);
  ok = ok && check(heddle_network_forward(net, xs, 4, out, 4), "forward");
  for (i = 0; ok && i < 4; i++) printf("xor(%g, %g) = %.4f\n", xs[2 * i], xs[2 * i + 1], out[i]);

  /* Save (ask for the size first), load, check the bits. */
  heddle_network_save(net, HEDDLE_FORMAT_SAFETENSORS, NULL, 0, &len);
  saved = malloc(len);
  ok = ok && check(heddle_network_save(net, HEDDLE_FORMAT_SAFETENSORS, saved, len, &len), "save");
  ok = ok && check(heddle_network_load(engine, HEDDLE_FORMAT_SAFETENSORS, saved, len, NULL, &copy), "load");
  ok = ok && check(heddle_network_forward(copy, xs, 4, out2, 4), "forward (loaded)");
  if (ok) printf("reloaded network: %s\n", memcmp(out, out2, sizeof out) == 0 ? "same bits" : "DIFFERENT BITS");
  ok = ok && memcmp(out, out2, sizeof out) == 0;
  free(saved);

  heddle_network_free(copy);
  heddle_network_free(net);
  heddle_engine_close(engine);
  return ok ? 0 : 1;
}
