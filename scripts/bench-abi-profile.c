/*
 * Where a Forward round trip through libheddle spends its time (scripts/bench-abi.sh --profile).
 *
 * Runs `calls` sequential Forward calls of one 1024-float sample through the pass-through
 * network (a disabled 1024x1024 dense layer, as examples/latency.c) and splits the wall time
 * per call into:
 *   client CPU   this process (libheddle: build the request, send, poll, recv, verify, copy),
 *                CLOCK_PROCESS_CPUTIME_ID;
 *   engine CPU   the engine process, every thread (JS dispatch, the core's forward, its read
 *                and write syscalls, GC), from /proc/PID/task/TID/schedstat;
 *   neither      both processes off the CPU: the kernel's wake-up of the other side and the
 *                scheduler's delay (on a loaded machine: waiting for a core).
 * and counts context switches of both.
 *
 *   bench-abi-profile [calls]     engine: $HEDDLE_ENGINE (a command line), as heddle_latency;
 *                                 or HEDDLE_SOCKET=PATH: connect to `heddle-engine --socket PATH`
 *                                 (HEDDLE_ENGINE_PID=its pid, for its CPU time)
 *
 * Prints one line of key=value pairs (times in us per call). Linux only (/proc).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "heddle.h"

static double now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* CPU ns of every thread of pid, and its context switches. */
static void engine_usage(long pid, double *cpu_ns, double *switches) {
  char path[512], line[256];
  DIR *d;
  struct dirent *e;
  *cpu_ns = 0;
  *switches = 0;
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  d = opendir(path);
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    FILE *f;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
    if ((f = fopen(path, "r")) != NULL) {
      double ns = 0;
      if (fscanf(f, "%lf", &ns) == 1) *cpu_ns += ns;
      fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%ld/task/%s/status", pid, e->d_name);
    if ((f = fopen(path, "r")) != NULL) {
      while (fgets(line, sizeof line, f)) {
        double v;
        if (sscanf(line, "voluntary_ctxt_switches: %lf", &v) == 1 || sscanf(line, "nonvoluntary_ctxt_switches: %lf", &v) == 1) *switches += v;
      }
      fclose(f);
    }
  }
  closedir(d);
}

int main(int argc, char **argv) {
  int calls = argc > 1 ? atoi(argv[1]) : 20000, i;
  heddle_engine *e = NULL;
  heddle_network *n = NULL;
  float x[1024], y[1024];
  double *lat, wall0, cpu0, eng0, engsw0, eng1, engsw1, cpu1, wall1;
  struct rusage r0, r1;
  long pid;
  char info[2048];
  size_t len = 0;
  char *rt;
  if (calls < 100) calls = 100;
  lat = malloc(sizeof(double) * (size_t)calls);
  for (i = 0; i < 1024; i++) x[i] = (float)i / 1024.0f;
  const char *sock = getenv("HEDDLE_SOCKET"), *epid = getenv("HEDDLE_ENGINE_PID");
  if ((sock && *sock ? heddle_engine_connect(sock, NULL, &e) : heddle_engine_start(NULL, NULL, &e)) != HEDDLE_OK ||
      heddle_network_create(e, "{\"layers\":[{\"type\":\"dense\",\"input_height\":1024,\"output_height\":1024,\"disabled\":true}]}", 1, &n) != HEDDLE_OK) {
    fprintf(stderr, "%s\n", heddle_last_error());
    return 1;
  }
  heddle_engine_info(e, info, sizeof info, &len);
  rt = strstr(info, "\"runtime\":\"");
  pid = (long)heddle_engine_pid(e);
  if (pid <= 0 && epid) pid = atol(epid);
  for (i = 0; i < 3000; i++) heddle_network_forward(n, x, 1, y, 1024);

  engine_usage(pid, &eng0, &engsw0);
  getrusage(RUSAGE_SELF, &r0);
  cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  wall0 = now_ns(CLOCK_MONOTONIC);
  for (i = 0; i < calls; i++) {
    double t = now_ns(CLOCK_MONOTONIC);
    if (heddle_network_forward(n, x, 1, y, 1024) != HEDDLE_OK) {
      fprintf(stderr, "%s\n", heddle_last_error());
      return 1;
    }
    lat[i] = (now_ns(CLOCK_MONOTONIC) - t) / 1e3;
  }
  wall1 = now_ns(CLOCK_MONOTONIC);
  cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  getrusage(RUSAGE_SELF, &r1);
  engine_usage(pid, &eng1, &engsw1);
  qsort(lat, (size_t)calls, sizeof(double), cmp);
  {
    double wall = (wall1 - wall0) / 1e3 / calls, client = (cpu1 - cpu0) / 1e3 / calls, engine = (eng1 - eng0) / 1e3 / calls;
    double csw = (double)((r1.ru_nvcsw + r1.ru_nivcsw) - (r0.ru_nvcsw + r0.ru_nivcsw)) / calls;
    printf("runtime=%.*s transport=%s calls=%d mean_us=%.2f p50_us=%.2f p99_us=%.2f client_cpu_us=%.2f engine_cpu_us=%.2f idle_us=%.2f client_switches=%.2f engine_switches=%.2f\n",
           rt ? (int)strcspn(rt + 11, "\"") : 1, rt ? rt + 11 : "?", sock && *sock ? "socket" : "stdio", calls, wall, lat[calls / 2], lat[calls * 99 / 100], client, engine, wall - client - engine, csw,
           (engsw1 - engsw0) / calls);
  }
  heddle_network_free(n);
  heddle_engine_close(e);
  free(lat);
  return 0;
}
