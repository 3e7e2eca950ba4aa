/*
 * Forward round-trip latency through libheddle: one 1024-float sample through a network
 * that passes it on (a disabled 1024x1024 dense layer), so the time is the transport's.
 * Prints p50 / p99 of sequential calls and the rate of pipelined calls.
 *
 *   heddle_latency [calls] [pipelined-batch]      (engine: $HEDDLE_ENGINE or node + bundle)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heddle.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int calls = argc > 1 ? atoi(argv[1]) : 20000;
  int window = argc > 2 ? atoi(argv[2]) : 256;
  heddle_engine *e = NULL;
  heddle_network *n = NULL;
  float *x = malloc(sizeof(float) * 1024 * (size_t)window), *y = malloc(sizeof(float) * 1024 * (size_t)window);
  double *lat = malloc(sizeof(double) * (size_t)calls);
  char info[2048];
  size_t len;
  int i;
  double t0;
  for (i = 0; i < 1024 * window; i++) x[i] = (float)(i % 1024) / 1024.0f;
  if (heddle_engine_start(NULL, NULL, &e) != HEDDLE_OK ||
      heddle_network_create(e, "{\"layers\":[{\"type\":\"dense\",\"input_height\":1024,\"output_height\":1024,\"disabled\":true}]}", 1, &n) != HEDDLE_OK) {
    fprintf(stderr, "%s\n", heddle_last_error());
    return 1;
  }
  heddle_engine_info(e, info, sizeof info, &len);
  for (i = 0; i < 2000; i++) heddle_network_forward(n, x, 1, y, 1024);
  for (i = 0; i < calls; i++) {
    t0 = now_us();
    if (heddle_network_forward(n, x, 1, y, 1024) != HEDDLE_OK) {
      fprintf(stderr, "%s\n", heddle_last_error());
      return 1;
    }
    lat[i] = now_us() - t0;
  }
  qsort(lat, (size_t)calls, sizeof(double), cmp);
  t0 = now_us();
  for (i = 0; i < calls; i += window) {
    if (heddle_network_forward_pipelined(n, x, 1, (size_t)window, y, 1024 * (size_t)window) != HEDDLE_OK) {
      fprintf(stderr, "%s\n", heddle_last_error());
      return 1;
    }
  }
  printf("%s\nforward(1024 floats): p50 %.1f us  p99 %.1f us  pipelined %.0f calls/s (window %d)\n", info, lat[calls / 2], lat[calls * 99 / 100],
         (double)((calls + window - 1) / window * window) / ((now_us() - t0) / 1e6), window);
  heddle_network_free(n);
  heddle_engine_close(e);
  free(x);
  free(y);
  free(lat);
  return 0;
}
