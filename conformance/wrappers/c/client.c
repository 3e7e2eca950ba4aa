/*
 * The C column of the conformance matrix: a client of libheddle (bindings/c) that runs
 * materialized conformance vectors through the engine process and reports each op's arrays.
 *
 *   heddle_conformance_c --engine '<engine argv as JSON>' --backend cpu REQUEST.json REPORT.json
 *
 * The protocol is docs/conformance.md, "Wrapper way in": REQUEST.json is
 * { backend, vectors: [MaterializedVector] } (conformance/runner/materialize.ts), with every
 * tensor as { dtype, shape, data: base64 little-endian }. Per vector, the client builds the
 * network from `config` and `seed`, sets `weights`, runs the ops in order on that one network
 * and answers, per op, the arrays of docs/conformance.md "What is hashed" (the host digests
 * them) or the engine's error code. The op -> ABI mapping (docs/abi.md):
 *
 *   forward   -> Forward (heddle_network_forward_tensor, the input's own shape)
 *   grad      -> Grad (input grad, every weight grad in parameter order)
 *   loss      -> Loss (loss value, dLoss/dOutput)
 *   train     -> OptimizerCreate, Train with that optimizer and progress every step (the step
 *                losses and lrs come from the progress frames), NetworkGetWeights, OptimizerState
 *   roundtrip -> NetworkSave, NetworkLoad, NetworkSave (of the loaded one), Forward (loaded one)
 *   weights   -> NetworkSetWeights (not complete: only the named parameters)
 *
 * One engine serves the whole request (networks are freed after each vector); an engine that
 * dies is restarted for the next vector. Exit status 0 when REPORT.json was written (op
 * failures are in the report), 1 when the client could not run (usage, engine start), with
 * the reason on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heddle.h"
#include "json.h"

#define MAX_RANK 16

static const char *PROG = "heddle conformance (C)";

static void die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "%s: ", PROG);
  fprintf(stderr, fmt, a ? a : "", b ? b : "");
  fputc('\n', stderr);
  exit(1);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory%s%s", NULL, NULL);
  return p;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) die("cannot open %s: %s", path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) die("cannot read %s: %s", path, strerror(errno));
  buf = xmalloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) die("cannot read %s: %s", path, strerror(errno));
  buf[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* ---------------------------------------------------------------- the engine */

typedef struct client {
  const char **argv; /* the engine command, NULL-terminated */
  const char *backend;
  heddle_engine *engine;
  char runtime[64];
  char version[64];
  char *unavailable; /* set when the backend cannot run: the report says so and has no results */
} client;

/* Starts (or restarts) the engine, reads the handshake's runtime and selects the backend. */
static void start_engine(client *c) {
  heddle_engine_options o;
  char info[8192];
  size_t len = 0;
  jval j;
  char err[256];
  const char *t;
  heddle_engine_options_init(&o);
  o.client_name = "heddle conformance (C, libheddle " HEDDLE_LIB_VERSION ")";
  t = getenv("HEDDLE_CONFORMANCE_TIMEOUT_MS");
  o.timeout_ms = t && *t ? atoi(t) : 120000;
  if (heddle_engine_start(c->argv, &o, &c->engine) != HEDDLE_OK) die("cannot start the engine (%s): %s", c->argv[0], heddle_last_error());
  if (heddle_engine_info(c->engine, info, sizeof info, &len) != HEDDLE_OK) die("engine info: %s%s", heddle_last_error(), NULL);
  if (json_parse(info, len, &j, err, sizeof err) != 0) die("engine info: %s%s", err, NULL);
  snprintf(c->runtime, sizeof c->runtime, "%s", json_get_str(&j, "runtime") ? json_get_str(&j, "runtime") : "");
  snprintf(c->version, sizeof c->version, "%s", json_get_str(&j, "runtime_version") ? json_get_str(&j, "runtime_version") : "");
  json_free(&j);
  if (heddle_engine_set_backend(c->engine, c->backend) != HEDDLE_OK) {
    heddle_status s = heddle_last_status();
    if (s == HEDDLE_E_BACKEND_UNAVAILABLE || s == HEDDLE_E_ARGUMENT_INVALID) {
      free(c->unavailable);
      c->unavailable = strdup(heddle_last_error());
      return;
    }
    die("selecting backend %s: %s", c->backend, heddle_last_error());
  }
}

/* ---------------------------------------------------------------- tensors */

typedef struct wire {
  heddle_dtype dtype;
  int64_t shape[MAX_RANK];
  size_t rank;
  size_t count; /* elements */
  void *data;   /* 16-byte aligned, little-endian */
  size_t nbytes;
} wire;

/* Decodes a WireTensor { dtype, shape, data }. Returns NULL or what is wrong with it. */
static const char *wire_decode(const jval *w, wire *out) {
  const jval *shape = json_get(w, "shape"), *data = json_get(w, "data");
  const char *dtype = json_get_str(w, "dtype");
  size_t i;
  memset(out, 0, sizeof *out);
  if (!w || w->type != J_OBJ) return "not an object";
  if (!dtype || (strcmp(dtype, "f32") && strcmp(dtype, "i32"))) return "dtype is not f32 or i32";
  out->dtype = strcmp(dtype, "f32") ? HEDDLE_DTYPE_I32 : HEDDLE_DTYPE_F32;
  if (!shape || shape->type != J_ARR || shape->n > MAX_RANK) return "bad shape";
  if (!data || data->type != J_STR) return "no data";
  out->rank = shape->n;
  out->count = 1;
  for (i = 0; i < shape->n; i++) {
    if (shape->kids[i].type != J_NUM || shape->kids[i].num < 0) return "bad shape";
    out->shape[i] = (int64_t)shape->kids[i].num;
    out->count *= (size_t)out->shape[i];
  }
  out->data = base64_decode(data->str, data->len, &out->nbytes);
  if (!out->data) return "data is not base64";
  if (out->nbytes != out->count * 4) {
    free(out->data);
    out->data = NULL;
    return "data length does not match the shape";
  }
  return NULL;
}

static heddle_tensor wire_tensor(const wire *w) {
  heddle_tensor t;
  t.dtype = w->dtype;
  t.rank = w->rank;
  t.shape = w->shape;
  t.data = w->data;
  t.nbytes = w->nbytes;
  return t;
}

/* ---------------------------------------------------------------- results */

/* One op's arrays, written as they are produced; discarded when the op fails half way. */
static void emit_array(sbuf *a, const char *name, const char *dtype, const int64_t *shape, size_t rank, const void *data, size_t nbytes) {
  size_t i;
  if (a->len) sb_putc(a, ',');
  sb_puts(a, "{\"name\":");
  sb_json_str(a, name);
  sb_printf(a, ",\"dtype\":\"%s\",\"shape\":[", dtype);
  for (i = 0; i < rank; i++) sb_printf(a, "%s%lld", i ? "," : "", (long long)shape[i]);
  sb_puts(a, "],\"data\":\"");
  sb_base64(a, data, nbytes);
  sb_puts(a, "\"}");
}

/* [batch, ...per] into shape; returns the rank. */
static size_t batch_shape(int64_t *shape, size_t batch, const int64_t *per, size_t rank) {
  size_t i;
  shape[0] = (int64_t)batch;
  for (i = 0; i < rank && i + 1 < MAX_RANK; i++) shape[i + 1] = per[i];
  return rank + 1;
}

typedef struct op_out {
  sbuf arrays;
  const char *code; /* NULL: success */
  char message[2048];
} op_out;

static int op_fail(op_out *o, const char *code, const char *fmt, const char *a) {
  o->code = code;
  snprintf(o->message, sizeof o->message, fmt, a ? a : "");
  return -1;
}

/* The engine's (or libheddle's) error of the last call. */
static int op_status(op_out *o, heddle_status s) {
  o->code = heddle_status_name(s);
  snprintf(o->message, sizeof o->message, "%s", heddle_last_error());
  return -1;
}

/* ---------------------------------------------------------------- ops */

typedef struct vec_ctx {
  client *c;
  const char *text; /* the request's source (for sub-documents) */
  heddle_network *net;
  uint64_t seed;
} vec_ctx;

static int need_wire(op_out *o, const jval *op, const char *field, wire *w) {
  const jval *j = json_get(op, field);
  const char *why;
  if (!j) return op_fail(o, "EXCEPTION", "the materialized op has no %s (the host could not generate it)", field);
  why = wire_decode(j, w);
  if (why) {
    char m[256];
    snprintf(m, sizeof m, "%s: %s", field, why);
    return op_fail(o, "EXCEPTION", "bad materialized tensor %s", m);
  }
  return 0;
}

/* The weights of net as named f32 arrays `<name><suffix>`, split from one flat buffer. */
static void emit_parameters(sbuf *a, heddle_network *net, const float *flat, const char *suffix) {
  size_t i, off = 0, k, n = heddle_network_parameter_tensors(net);
  for (i = 0; i < n; i++) {
    size_t rank = heddle_network_parameter_rank(net, i);
    const int64_t *shape = heddle_network_parameter_shape(net, i);
    char name[512];
    size_t count = 1;
    for (k = 0; k < rank; k++) count *= (size_t)shape[k];
    snprintf(name, sizeof name, "%s%s", heddle_network_parameter_name(net, i), suffix);
    emit_array(a, name, "f32", shape, rank, flat + off, count * sizeof(float));
    off += count;
  }
}

/* Forward of x through net into an f32 array `name` of shape [batch, ...output_shape]. */
static int forward_into(op_out *o, heddle_network *net, const wire *x, const char *name) {
  heddle_tensor t = wire_tensor(x);
  size_t batch = x->rank ? (size_t)x->shape[0] : 0;
  size_t want = batch * heddle_network_output_size(net), count = 0;
  float *y = xmalloc(want * sizeof(float));
  int64_t shape[MAX_RANK];
  size_t rank;
  heddle_status s = heddle_network_forward_tensor(net, &t, y, want, &count);
  if (s == HEDDLE_E_BUFFER_TOO_SMALL && count > want) {
    free(y);
    y = xmalloc(count * sizeof(float));
    s = heddle_network_forward_tensor(net, &t, y, count, &count);
  }
  if (s != HEDDLE_OK) {
    free(y);
    return op_status(o, s);
  }
  if (count != want) {
    char m[128];
    free(y);
    snprintf(m, sizeof m, "%zu floats, [batch, ...output_shape] holds %zu", count, want);
    return op_fail(o, "EXCEPTION", "the forward output has %s", m);
  }
  rank = batch_shape(shape, batch, heddle_network_output_shape(net), heddle_network_output_rank(net));
  emit_array(&o->arrays, name, "f32", shape, rank, y, count * sizeof(float));
  free(y);
  return 0;
}

static int op_forward(vec_ctx *v, const jval *op, op_out *o) {
  wire x;
  int r;
  if (need_wire(o, op, "input", &x)) return -1;
  r = forward_into(o, v->net, &x, "output");
  free(x.data);
  return r;
}

/* Checks that x is [batch, ...per-sample shape] of `size` elements per sample. */
static int check_batch(op_out *o, const wire *x, size_t size, const char *what) {
  size_t batch = x->rank ? (size_t)x->shape[0] : 0;
  if (x->dtype != HEDDLE_DTYPE_F32) return op_fail(o, "EXCEPTION", "%s is not f32 (libheddle's grad and loss take f32)", what);
  if (batch * size != x->count) return op_fail(o, "EXCEPTION", "%s is not [batch, ...the network's per-sample shape]", what);
  return 0;
}

static int op_grad(vec_ctx *v, const jval *op, op_out *o) {
  wire x, dy;
  heddle_network *net = v->net;
  size_t in = heddle_network_input_size(net), pc = heddle_network_parameter_count(net), batch;
  float *dx = NULL, *wg = NULL;
  heddle_status s;
  int r = -1;
  if (need_wire(o, op, "input", &x)) return -1;
  if (need_wire(o, op, "grad_output", &dy)) {
    free(x.data);
    return -1;
  }
  batch = x.rank ? (size_t)x.shape[0] : 0;
  if (check_batch(o, &x, in, "input") || check_batch(o, &dy, heddle_network_output_size(net), "grad_output")) goto done;
  dx = xmalloc(batch * in * sizeof(float));
  wg = xmalloc(pc * sizeof(float));
  s = heddle_network_grad(net, x.data, batch, dy.data, dx, batch * in, wg, pc);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  emit_array(&o->arrays, "input.grad", "f32", x.shape, x.rank, dx, batch * in * sizeof(float));
  emit_parameters(&o->arrays, net, wg, ".grad");
  r = 0;
done:
  free(x.data);
  free(dy.data);
  free(dx);
  free(wg);
  return r;
}

static int op_loss(vec_ctx *v, const jval *op, op_out *o) {
  wire x, target;
  heddle_network *net = v->net;
  const char *loss = json_get_str(json_get(op, "spec"), "loss");
  size_t out = heddle_network_output_size(net), batch;
  float value = 0, *grad = NULL;
  int64_t shape[MAX_RANK];
  size_t rank;
  heddle_tensor t;
  heddle_status s;
  int r = -1;
  if (!loss) return op_fail(o, "EXCEPTION", "the loss op names no loss%s", NULL);
  if (need_wire(o, op, "input", &x)) return -1;
  if (need_wire(o, op, "target", &target)) {
    free(x.data);
    return -1;
  }
  batch = x.rank ? (size_t)x.shape[0] : 0;
  if (check_batch(o, &x, heddle_network_input_size(net), "input")) goto done;
  grad = xmalloc(batch * out * sizeof(float));
  t = wire_tensor(&target);
  s = heddle_network_loss(net, x.data, batch, &t, loss, &value, grad, batch * out);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  emit_array(&o->arrays, "loss", "f32", NULL, 0, &value, sizeof value);
  rank = batch_shape(shape, batch, heddle_network_output_shape(net), heddle_network_output_rank(net));
  emit_array(&o->arrays, "grad", "f32", shape, rank, grad, batch * out * sizeof(float));
  r = 0;
done:
  free(x.data);
  free(target.data);
  free(grad);
  return r;
}

typedef struct progress_log {
  float *losses;
  double *lrs;
  size_t n, cap;
} progress_log;

static void on_progress(const heddle_train_progress *p, void *user) {
  progress_log *l = user;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    float *a = realloc(l->losses, nc * sizeof *a);
    double *b;
    if (!a) die("out of memory%s%s", NULL, NULL);
    l->losses = a;
    b = realloc(l->lrs, nc * sizeof *b);
    if (!b) die("out of memory%s%s", NULL, NULL);
    l->lrs = b;
    l->cap = nc;
  }
  l->losses[l->n] = p->loss;
  l->lrs[l->n] = p->lr;
  l->n++;
}

static int op_train(vec_ctx *v, const jval *op, op_out *o) {
  const jval *spec = json_get(op, "spec"), *j;
  heddle_network *net = v->net;
  wire x, y;
  heddle_tensor tx, ty;
  heddle_train_options t;
  heddle_train_result res;
  heddle_optimizer *opt = NULL;
  progress_log log = {NULL, NULL, 0, 0};
  char *opt_json = NULL, *sched_json = NULL;
  float *epoch_losses = NULL, *weights = NULL;
  size_t pc = heddle_network_parameter_count(net), i, nstate = 0;
  uint64_t step = 0;
  int32_t step32;
  int64_t len1[1];
  heddle_status s;
  int r = -1;
  if (need_wire(o, op, "inputs", &x)) return -1;
  if (need_wire(o, op, "targets", &y)) {
    free(x.data);
    return -1;
  }
  heddle_train_options_init(&t);
  t.epochs = (uint32_t)json_get_num(spec, "epochs", 2);
  t.batch_size = (uint32_t)json_get_num(spec, "batch_size", 2);
  t.loss = json_get_str(spec, "loss") ? json_get_str(spec, "loss") : "mse";
  j = json_get(spec, "optimizer");
  opt_json = j && j->type != J_NULL ? json_source(v->text, j) : strdup("{\"type\":\"sgd\",\"lr\":0.05}");
  j = json_get(spec, "schedule");
  if (j && j->type != J_NULL) sched_json = json_source(v->text, j);
  t.schedule_json = sched_json;
  t.clip_norm = json_get_num(spec, "clip_norm", 0);
  j = json_get(spec, "shuffle");
  t.shuffle = j && j->type == J_TRUE;
  t.seed = (uint64_t)json_get_num(spec, "seed", (double)v->seed);
  t.progress_every = 1;
  epoch_losses = xmalloc((t.epochs ? t.epochs : 1) * sizeof(float));
  t.epoch_losses = epoch_losses;
  t.epoch_losses_cap = t.epochs;
  s = heddle_optimizer_create(net, opt_json, &opt);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  t.optimizer = opt;
  tx = wire_tensor(&x);
  ty = wire_tensor(&y);
  memset(&res, 0, sizeof res);
  s = heddle_network_train(net, &tx, &ty, &t, on_progress, &log, &res);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  weights = xmalloc(pc * sizeof(float));
  s = heddle_network_get_weights(net, weights, pc);
  if (s == HEDDLE_OK) s = heddle_optimizer_state(opt, &step, &nstate);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  len1[0] = (int64_t)(res.epochs < t.epochs ? res.epochs : t.epochs);
  emit_array(&o->arrays, "epoch_losses", "f32", len1, 1, epoch_losses, (size_t)len1[0] * sizeof(float));
  len1[0] = (int64_t)log.n;
  emit_array(&o->arrays, "step_losses", "f32", len1, 1, log.losses, log.n * sizeof(float));
  emit_array(&o->arrays, "step_lrs", "f64", len1, 1, log.lrs, log.n * sizeof(double));
  emit_parameters(&o->arrays, net, weights, "");
  step32 = (int32_t)step;
  emit_array(&o->arrays, "optimizer.step", "i32", NULL, 0, &step32, sizeof step32);
  for (i = 0; i < nstate; i++) {
    size_t rank = 0, count = 0;
    const int64_t *shape = heddle_optimizer_state_shape(opt, i, &rank);
    const float *d = heddle_optimizer_state_data(opt, i, &count);
    char name[512];
    snprintf(name, sizeof name, "optimizer.%s", heddle_optimizer_state_name(opt, i));
    emit_array(&o->arrays, name, "f32", shape, rank, d, count * sizeof(float));
  }
  r = 0;
done:
  heddle_optimizer_free(opt);
  free(x.data);
  free(y.data);
  free(opt_json);
  free(sched_json);
  free(epoch_losses);
  free(weights);
  free(log.losses);
  free(log.lrs);
  return r;
}

/* Saves net into a malloc'd buffer (libheddle keeps the fetched bytes for the second call). */
static heddle_status save_bytes(heddle_network *net, heddle_format f, unsigned char **buf, size_t *len) {
  heddle_status s = heddle_network_save(net, f, NULL, 0, len);
  *buf = NULL;
  if (s == HEDDLE_OK) {
    *buf = xmalloc(1);
    return s;
  }
  if (s != HEDDLE_E_BUFFER_TOO_SMALL) return s;
  *buf = xmalloc(*len);
  s = heddle_network_save(net, f, *buf, *len, len);
  if (s != HEDDLE_OK) {
    free(*buf);
    *buf = NULL;
  }
  return s;
}

static int op_roundtrip(vec_ctx *v, const jval *op, op_out *o) {
  const char *format = json_get_str(json_get(op, "spec"), "format");
  heddle_format f = format && !strcmp(format, "json") ? HEDDLE_FORMAT_JSON : HEDDLE_FORMAT_SAFETENSORS;
  unsigned char *file = NULL, *again = NULL;
  size_t n1 = 0, n2 = 0;
  int64_t shape[1];
  heddle_network *loaded = NULL;
  heddle_status s;
  wire x;
  int r = -1;
  if (!format || (strcmp(format, "json") && strcmp(format, "safetensors"))) return op_fail(o, "EXCEPTION", "roundtrip format '%s' is not json or safetensors", format);
  if (need_wire(o, op, "input", &x)) return -1;
  s = save_bytes(v->net, f, &file, &n1);
  if (s == HEDDLE_OK) s = heddle_network_load(v->c->engine, f, file, n1, NULL, &loaded);
  if (s == HEDDLE_OK) s = save_bytes(loaded, f, &again, &n2);
  if (s != HEDDLE_OK) {
    op_status(o, s);
    goto done;
  }
  shape[0] = (int64_t)n1;
  emit_array(&o->arrays, "file", "u8", shape, 1, file, n1);
  shape[0] = (int64_t)n2;
  emit_array(&o->arrays, "file.resaved", "u8", shape, 1, again, n2);
  r = forward_into(o, loaded, &x, "output");
done:
  heddle_network_free(loaded);
  free(file);
  free(again);
  free(x.data);
  return r;
}

/* ---------------------------------------------------------------- vectors */

static void write_op(sbuf *out, const char *key, op_out *o) {
  if (out->p && out->p[out->len - 1] != '[') sb_putc(out, ',');
  sb_puts(out, "{\"key\":");
  sb_json_str(out, key);
  if (o->code) {
    sb_puts(out, ",\"error\":");
    sb_json_str(out, o->code);
    sb_puts(out, ",\"message\":");
    sb_json_str(out, o->message);
  } else {
    sb_puts(out, ",\"arrays\":[");
    if (o->arrays.len) sb_putn(out, o->arrays.p, o->arrays.len);
    sb_putc(out, ']');
  }
  sb_putc(out, '}');
}

/* Builds the network of a vector: create from config and seed, then replacement weights. */
static heddle_status build_network(vec_ctx *v, const jval *vec, char *why, size_t whycap) {
  const jval *config = json_get(vec, "config"), *weights = json_get(vec, "weights");
  char *cfg;
  heddle_status s;
  size_t i, n = 0;
  why[0] = 0;
  if (!config) {
    snprintf(why, whycap, "the vector has no config");
    return HEDDLE_E_CLIENT_ARGUMENT_INVALID;
  }
  cfg = json_source(v->text, config);
  s = heddle_network_create(v->c->engine, cfg, v->seed, &v->net);
  free(cfg);
  if (s != HEDDLE_OK || !weights || weights->type != J_OBJ || weights->n == 0) return s;
  {
    const char **names = xmalloc(weights->n * sizeof *names);
    heddle_tensor *tensors = xmalloc(weights->n * sizeof *tensors);
    wire *wires = xmalloc(weights->n * sizeof *wires);
    for (i = 0; i < weights->n; i++) {
      const char *bad = wire_decode(&weights->kids[i], &wires[i]);
      if (bad) {
        snprintf(why, whycap, "weights.%s: %s", weights->keys[i], bad);
        s = HEDDLE_E_CLIENT_ARGUMENT_INVALID;
        break;
      }
      names[i] = weights->keys[i];
      tensors[i] = wire_tensor(&wires[i]);
      n++;
    }
    if (s == HEDDLE_OK) s = heddle_network_set_weights(v->net, names, tensors, n, 0);
    for (i = 0; i < n; i++) free(wires[i].data);
    free(names);
    free(tensors);
    free(wires);
  }
  if (s != HEDDLE_OK) {
    if (!why[0]) snprintf(why, whycap, "%s", heddle_last_error());
    heddle_network_free(v->net);
    v->net = NULL;
  }
  return s;
}

static void run_vector(client *c, const char *text, const jval *vec, sbuf *out) {
  const char *id = json_get_str(vec, "id");
  const jval *ops = json_get(vec, "ops");
  vec_ctx v;
  double t0 = now_ms();
  sbuf opsb;
  size_t i;
  char why[2048];
  heddle_status s;
  sb_init(&opsb);
  sb_putc(&opsb, '[');
  memset(&v, 0, sizeof v);
  v.c = c;
  v.text = text;
  v.seed = (uint64_t)json_get_num(vec, "seed", 0);
  if (!heddle_engine_alive(c->engine)) {
    heddle_engine_close(c->engine);
    c->engine = NULL;
    start_engine(c);
  }
  s = build_network(&v, vec, why, sizeof why);
  for (i = 0; ops && ops->type == J_ARR && i < ops->n; i++) {
    const jval *op = &ops->kids[i];
    const char *key = json_get_str(op, "key"), *name = json_get_str(json_get(op, "spec"), "op");
    op_out o;
    memset(&o, 0, sizeof o);
    sb_init(&o.arrays);
    if (s != HEDDLE_OK) {
      o.code = heddle_status_name(s);
      snprintf(o.message, sizeof o.message, "building the network: %s", why);
    } else if (!name) {
      op_fail(&o, "EXCEPTION", "op %s has no spec.op", key);
    } else if (!strcmp(name, "forward")) {
      op_forward(&v, op, &o);
    } else if (!strcmp(name, "grad")) {
      op_grad(&v, op, &o);
    } else if (!strcmp(name, "loss")) {
      op_loss(&v, op, &o);
    } else if (!strcmp(name, "train")) {
      op_train(&v, op, &o);
    } else if (!strcmp(name, "roundtrip")) {
      op_roundtrip(&v, op, &o);
    } else {
      op_fail(&o, "EXCEPTION", "unknown op '%s'", name);
    }
    if (o.arrays.oom) die("out of memory%s%s", NULL, NULL);
    write_op(&opsb, key ? key : "?", &o);
    sb_free(&o.arrays);
  }
  sb_putc(&opsb, ']');
  heddle_network_free(v.net);
  if (out->p && out->p[out->len - 1] != '[') sb_putc(out, ',');
  sb_puts(out, "{\"id\":");
  sb_json_str(out, id ? id : "?");
  sb_printf(out, ",\"ms\":%.3f,\"ops\":", now_ms() - t0);
  sb_putn(out, opsb.p, opsb.len);
  sb_putc(out, '}');
  sb_free(&opsb);
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr, "usage: heddle_conformance_c --engine '<engine argv as JSON>' --backend NAME REQUEST.json REPORT.json\n");
  exit(1);
}

int main(int argc, char **argv) {
  const char *engine_json = NULL, *req_path = NULL, *out_path = NULL;
  client c;
  char *text, *engine_text, err[256];
  size_t len, i;
  jval req, eng;
  const jval *vectors;
  sbuf out;
  FILE *f;
  int a;
  const uint32_t one = 1;
  if (*(const unsigned char *)&one != 1) die("this client writes tensors as host memory and needs a little-endian machine%s%s", NULL, NULL);
  memset(&c, 0, sizeof c);
  for (a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--engine") && a + 1 < argc) engine_json = argv[++a];
    else if (!strcmp(argv[a], "--backend") && a + 1 < argc) c.backend = argv[++a];
    else if (argv[a][0] == '-' && argv[a][1] == '-') usage();
    else if (!req_path) req_path = argv[a];
    else if (!out_path) out_path = argv[a];
    else usage();
  }
  if (!engine_json || !req_path || !out_path) usage();
  if (!c.backend) c.backend = "cpu";

  engine_text = strdup(engine_json);
  if (json_parse(engine_text, strlen(engine_text), &eng, err, sizeof err) != 0 || eng.type != J_ARR || eng.n == 0) die("--engine must be a JSON array of strings (%s)%s", err, NULL);
  c.argv = xmalloc((eng.n + 1) * sizeof *c.argv);
  for (i = 0; i < eng.n; i++) {
    if (eng.kids[i].type != J_STR) die("--engine must be a JSON array of strings%s%s", NULL, NULL);
    c.argv[i] = eng.kids[i].str;
  }
  c.argv[eng.n] = NULL;

  text = read_file(req_path, &len);
  if (json_parse(text, len, &req, err, sizeof err) != 0) die("%s: %s", req_path, err);
  vectors = json_get(&req, "vectors");
  if (!vectors || vectors->type != J_ARR) die("%s: no \"vectors\" array%s", req_path, NULL);

  start_engine(&c);
  sb_init(&out);
  sb_puts(&out, "{\"runtime\":");
  sb_json_str(&out, c.runtime);
  sb_puts(&out, ",\"version\":");
  sb_json_str(&out, c.version);
  sb_puts(&out, ",\"backend\":");
  sb_json_str(&out, c.backend);
  if (c.unavailable) {
    sb_puts(&out, ",\"unavailable\":");
    sb_json_str(&out, c.unavailable);
  }
  sb_puts(&out, ",\"results\":[");
  if (!c.unavailable)
    for (i = 0; i < vectors->n; i++) run_vector(&c, text, &vectors->kids[i], &out);
  sb_puts(&out, "]}\n");
  if (out.oom) die("out of memory%s%s", NULL, NULL);
  heddle_engine_close(c.engine);

  f = fopen(out_path, "wb");
  if (!f) die("cannot write %s: %s", out_path, strerror(errno));
  if (fwrite(out.p, 1, out.len, f) != out.len || fclose(f) != 0) die("cannot write %s: %s", out_path, strerror(errno));
  sb_free(&out);
  json_free(&req);
  json_free(&eng);
  free(text);
  free(engine_text);
  free(c.argv);
  free(c.unavailable);
  return 0;
}
