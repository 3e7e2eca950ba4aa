/*
 * libheddle: the C interface to a Heddle engine (a deterministic neural virtual machine).
 *
 * A client starts an engine process (or connects to one serving a unix socket), then
 * creates networks and optimizers in it; each lives in the engine and is reached through an
 * opaque handle object. Every call returns a heddle_status: HEDDLE_OK (0) or an error code
 * (heddle_abi.h lists them; heddle_status_name() names them). After a failed call,
 * heddle_last_error() (this thread) and heddle_engine_last_error() (this engine) give
 * a message that says what went wrong and where.
 *
 * Memory: output buffers are the caller's (pointer + capacity). A call whose buffer is too
 * small returns HEDDLE_E_BUFFER_TOO_SMALL and reports the size it needs; calls that fetch
 * variable-sized data (save, describe) keep the fetched bytes, so calling again with a large
 * enough buffer does not ask the engine again. Pointers a getter returns (shapes, names)
 * stay valid until the object is freed. Free functions accept NULL.
 *
 * Threads: one engine may be used from several threads; its calls are serialized.
 * Engine death: a call on an engine that exited fails with HEDDLE_E_ENGINE_EXITED as soon as
 * the connection closes (no hang); start a new engine to go on. With timeout_ms set, a call
 * that gets no answer in time fails with HEDDLE_E_TIMEOUT and the engine is closed.
 *
 * C99. Link with -lheddle (libheddle.so / libheddle.a; CMake package `Heddle`, pkg-config `heddle`).
 */
#ifndef HEDDLE_H
#define HEDDLE_H

#include <stddef.h>
#include <stdint.h>

#include "heddle_abi.h"

#if defined(_WIN32)
#define HEDDLE_API __declspec(dllexport)
#elif defined(__GNUC__)
#define HEDDLE_API __attribute__((visibility("default")))
#else
#define HEDDLE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* libheddle's own version (the package version; the ABI version is in heddle_abi.h). */
#define HEDDLE_LIB_VERSION "0.1.0"

typedef struct heddle_engine heddle_engine;
typedef struct heddle_network heddle_network;
typedef struct heddle_optimizer heddle_optimizer;

/* ------------------------------------------------------------------ library */

HEDDLE_API const char *heddle_version(void);
/* "CONFIG_INVALID" for HEDDLE_E_CONFIG_INVALID, "OK" for HEDDLE_OK, "UNKNOWN" otherwise. */
HEDDLE_API const char *heddle_status_name(heddle_status status);
/* One line describing a status. */
HEDDLE_API const char *heddle_status_doc(heddle_status status);
/* The message of the last failed call on this thread ("" if none). Valid until this thread's next call. */
HEDDLE_API const char *heddle_last_error(void);
/* The status of the last failed call on this thread (HEDDLE_OK if none). */
HEDDLE_API heddle_status heddle_last_status(void);

/* ------------------------------------------------------------------ engines */

typedef struct heddle_engine_options {
  /* sizeof(heddle_engine_options); heddle_engine_options_init sets it. */
  size_t struct_size;
  /* Per-call limit in milliseconds; 0 waits as long as the engine lives. */
  int32_t timeout_ms;
  /* Sent in the handshake; NULL: "libheddle". */
  const char *client_name;
  /* With no command: the runtime that runs the engine bundle, "node" (default), "bun" or "deno". */
  const char *runtime;
  /* With no command: the engine bundle (heddle-engine.mjs); NULL: $HEDDLE_ENGINE_BUNDLE, else the path built in. */
  const char *engine_bundle;
} heddle_engine_options;

HEDDLE_API void heddle_engine_options_init(heddle_engine_options *options);

/*
 * Starts an engine process and does the handshake. `argv` is the command (NULL-terminated,
 * argv[0] looked up in PATH); NULL uses $HEDDLE_ENGINE (a command line, split on spaces),
 * else `<runtime> <engine_bundle>`. `options` may be NULL.
 */
HEDDLE_API heddle_status heddle_engine_start(const char *const *argv, const heddle_engine_options *options, heddle_engine **out);
/* Connects to an engine serving a unix socket (`heddle serve --socket PATH`) and does the handshake. */
HEDDLE_API heddle_status heddle_engine_connect(const char *socket_path, const heddle_engine_options *options, heddle_engine **out);
/*
 * Closes the connection (a started engine exits; it is killed if it does not within 2 s)
 * and frees the engine object. Networks and optimizers of the engine stay valid C objects
 * but their calls fail with HEDDLE_E_CLOSED; free them as usual. NULL-safe.
 */
HEDDLE_API void heddle_engine_close(heddle_engine *engine);
/* The message of the last failed call on this engine ("" if none). */
HEDDLE_API const char *heddle_engine_last_error(const heddle_engine *engine);
/* Nonzero while the connection is usable. */
HEDDLE_API int heddle_engine_alive(const heddle_engine *engine);
/* The started engine's process id; -1 for a socket connection. */
HEDDLE_API int64_t heddle_engine_pid(const heddle_engine *engine);
/* The handshake's answer as JSON: abi_version, engine_version, runtime, runtime_version, backends, max_frame_bytes, connection. */
HEDDLE_API heddle_status heddle_engine_info(heddle_engine *engine, char *buf, size_t cap, size_t *len);
/* Chooses the backend ("cpu", "webgpu") for this connection's later calls. */
HEDDLE_API heddle_status heddle_engine_set_backend(heddle_engine *engine, const char *name);

/* ------------------------------------------------------------------ tensors */

/* A tensor the caller owns: rank dims in shape, nbytes of row-major little-endian data. */
typedef struct heddle_tensor {
  heddle_dtype dtype;
  size_t rank;
  const int64_t *shape;
  const void *data;
  size_t nbytes;
} heddle_tensor;

/* ------------------------------------------------------------------ networks */

/* Builds a network from a config (Loom's JSON format); `seed` initializes the weights. */
HEDDLE_API heddle_status heddle_network_create(heddle_engine *engine, const char *config_json, uint64_t seed, heddle_network **out);
/* Builds a network from saved bytes; `config_json` (safetensors only, may be NULL) overrides the stored config. */
HEDDLE_API heddle_status heddle_network_load(heddle_engine *engine, heddle_format format, const void *data, size_t len, const char *config_json, heddle_network **out);
/* Serializes config and weights into buf; *len gets the size (also when the buffer is too small). */
HEDDLE_API heddle_status heddle_network_save(heddle_network *network, heddle_format format, void *buf, size_t cap, size_t *len);
/* The blueprint as JSON (`heddle info --json`), zero-terminated; *len excludes the terminator. */
HEDDLE_API heddle_status heddle_network_describe(heddle_network *network, char *buf, size_t cap, size_t *len);
/* Frees the network in the engine (and its optimizers) and the object. NULL-safe. */
HEDDLE_API heddle_status heddle_network_free(heddle_network *network);

/* Per-sample shapes (without the batch dimension); pointers valid until the network is freed. */
HEDDLE_API size_t heddle_network_input_rank(const heddle_network *network);
HEDDLE_API const int64_t *heddle_network_input_shape(const heddle_network *network);
HEDDLE_API size_t heddle_network_output_rank(const heddle_network *network);
HEDDLE_API const int64_t *heddle_network_output_shape(const heddle_network *network);
/* Elements of one sample's input / output. */
HEDDLE_API size_t heddle_network_input_size(const heddle_network *network);
HEDDLE_API size_t heddle_network_output_size(const heddle_network *network);
/* Weights: total element count, number of parameter tensors, each one's name and shape. */
HEDDLE_API size_t heddle_network_parameter_count(const heddle_network *network);
HEDDLE_API size_t heddle_network_parameter_tensors(const heddle_network *network);
HEDDLE_API const char *heddle_network_parameter_name(const heddle_network *network, size_t index);
HEDDLE_API size_t heddle_network_parameter_rank(const heddle_network *network, size_t index);
HEDDLE_API const int64_t *heddle_network_parameter_shape(const heddle_network *network, size_t index);

/* Inference on `batch` f32 samples: input holds batch*input_size floats, output gets batch*output_size. */
HEDDLE_API heddle_status heddle_network_forward(heddle_network *network, const float *input, size_t batch, float *output, size_t output_cap);
/* Inference on any input tensor (f32, or integer ids for networks that read them); f32 output, *count floats written. */
HEDDLE_API heddle_status heddle_network_forward_tensor(heddle_network *network, const heddle_tensor *input, float *output, size_t output_cap, size_t *count);
/*
 * `count` forward calls sent back to back (pipelined): inputs holds count*batch*input_size
 * floats, outputs gets count*batch*output_size. All calls are answered; the first error is returned.
 */
HEDDLE_API heddle_status heddle_network_forward_pipelined(heddle_network *network, const float *inputs, size_t batch, size_t count, float *outputs, size_t outputs_cap);

/*
 * Backward pass from grad_output (batch*output_size floats). input_grad gets batch*input_size
 * floats; weight_grads (may be NULL) gets parameter_count floats, every parameter's gradient
 * in parameter order. The engine keeps the weight gradients for heddle_optimizer_step.
 */
HEDDLE_API heddle_status heddle_network_grad(heddle_network *network, const float *input, size_t batch, const float *grad_output,
                                             float *input_grad, size_t input_grad_cap, float *weight_grads, size_t weight_grads_cap);
/* Backward pass of a loss ("mse", "cross_entropy") against target; *loss gets its value. */
HEDDLE_API heddle_status heddle_network_grad_loss(heddle_network *network, const float *input, size_t batch, const heddle_tensor *target, const char *loss,
                                                  float *loss_value, float *input_grad, size_t input_grad_cap, float *weight_grads, size_t weight_grads_cap);

typedef struct heddle_train_options {
  size_t struct_size; /* heddle_train_options_init sets it */
  uint32_t epochs;
  uint32_t batch_size;
  const char *loss;           /* "mse" or "cross_entropy" */
  const char *optimizer_json; /* e.g. "{\"type\":\"adamw\",\"lr\":0.001}"; or NULL with optimizer */
  heddle_optimizer *optimizer; /* an optimizer of this network (its state carries on), or NULL */
  const char *schedule_json;  /* learning-rate schedule, or NULL */
  double clip_norm;           /* clip gradients to this global L2 norm; 0: no clipping */
  int shuffle;                /* nonzero: shuffle samples each epoch (seeded) */
  uint64_t seed;
  uint32_t progress_every;    /* progress callback every this many steps (default 1); 0: never */
  float *epoch_losses;        /* optional: gets up to epoch_losses_cap per-epoch losses */
  size_t epoch_losses_cap;
} heddle_train_options;

typedef struct heddle_train_progress {
  uint32_t epoch;
  uint64_t step;
  uint64_t steps_per_epoch;
  uint64_t total_steps;
  float loss;
  double lr;
} heddle_train_progress;

typedef void (*heddle_progress_fn)(const heddle_train_progress *progress, void *user);

typedef struct heddle_train_result {
  float final_loss;
  uint64_t steps;
  uint32_t epochs;
} heddle_train_result;

HEDDLE_API void heddle_train_options_init(heddle_train_options *options);
/* Trains on inputs [N, ...input_shape] and targets; `progress` (may be NULL) sees each progress frame. */
HEDDLE_API heddle_status heddle_network_train(heddle_network *network, const heddle_tensor *inputs, const heddle_tensor *targets,
                                              const heddle_train_options *options, heddle_progress_fn progress, void *user, heddle_train_result *result);

/* Every weight, concatenated in parameter order: parameter_count floats into weights. */
HEDDLE_API heddle_status heddle_network_get_weights(heddle_network *network, float *weights, size_t cap);
/*
 * Replaces weights by name: names[i] gets tensors[i] (f32, the parameter's exact shape,
 * finite). All-or-nothing; with complete != 0 every parameter must be given.
 */
HEDDLE_API heddle_status heddle_network_set_weights(heddle_network *network, const char *const *names, const heddle_tensor *tensors, size_t count, int complete);
/* A loss ("mse", "cross_entropy") of the output against target: *loss_value, and dLoss/dOutput into output_grad (may be NULL). Changes nothing. */
HEDDLE_API heddle_status heddle_network_loss(heddle_network *network, const float *input, size_t batch, const heddle_tensor *target, const char *loss, float *loss_value,
                                             float *output_grad, size_t output_grad_cap);

/* Converts the weights' dtype; only HEDDLE_DTYPE_F32 (a no-op) until the dtype work lands (else HEDDLE_E_UNSUPPORTED). */
HEDDLE_API heddle_status heddle_network_morph_dtype(heddle_network *network, heddle_dtype dtype);

/* ------------------------------------------------------------------ optimizers */

/* An optimizer over the network's parameters, e.g. "{\"type\":\"sgd\",\"lr\":0.1,\"momentum\":0.9}" or "\"adamw\"". */
HEDDLE_API heddle_status heddle_optimizer_create(heddle_network *network, const char *spec_json, heddle_optimizer **out);
/* One update from the network's weight gradients (the last grad call's); a negative or NaN lr uses the spec's. *steps (may be NULL) gets the steps so far. */
HEDDLE_API heddle_status heddle_optimizer_step(heddle_optimizer *optimizer, double lr, uint64_t *steps);
/*
 * Fetches the optimizer's state (torch names): *step, and *tensors state tensors named
 * `<param>.<slot>` (e.g. "layers.0.weight.exp_avg"; none before the first step). The
 * accessors below read the fetched copy, valid until the next heddle_optimizer_state or free.
 */
HEDDLE_API heddle_status heddle_optimizer_state(heddle_optimizer *optimizer, uint64_t *step, size_t *tensors);
HEDDLE_API const char *heddle_optimizer_state_name(const heddle_optimizer *optimizer, size_t index);
HEDDLE_API const int64_t *heddle_optimizer_state_shape(const heddle_optimizer *optimizer, size_t index, size_t *rank);
HEDDLE_API const float *heddle_optimizer_state_data(const heddle_optimizer *optimizer, size_t index, size_t *count);
HEDDLE_API heddle_status heddle_optimizer_free(heddle_optimizer *optimizer);

#ifdef __cplusplus
}
#endif

#endif /* HEDDLE_H */
