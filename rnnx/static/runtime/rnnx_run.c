/* rnnx-run INPUTS OUTPUTS: one step per input of INPUTS from the initial state: int64 tokens, or float32
   vectors of RNNX_INPUT_FEATURES for a feature model (little-endian). The outputs (float32, steps x
   RNNX_OUTPUTS) go to OUTPUTS and one JSON line of figures to stdout. Only this runner's own buffers come from
   malloc; the model uses its static arena. */
#define _POSIX_C_SOURCE 199309L  /* clock_gettime under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rnnx_model.h"

/* What one step takes from INPUTS, and the step on it */
#define STRING(x) #x
#define DECIMAL(x) STRING(x)
#ifdef RNNX_INPUT_FEATURES
typedef float step_input[RNNX_INPUT_FEATURES];
#define STEP(input) rnnx_model_step(input)
#define INPUT_KIND "float32 features, " DECIMAL(RNNX_INPUT_FEATURES) " per step"
#else
typedef int64_t step_input[1];
#define STEP(input) rnnx_model_step((input)[0])
#define INPUT_KIND "int64 tokens"
#endif

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Peak resident memory of this process (of the emulator running it, under qemu-user). Not getrusage's
   ru_maxrss: Linux carries that over from the process that exec'd us. */
static long peak_rss_kb(void) {
  char line[256];
  long kb = -1;
  FILE *status = fopen("/proc/self/status", "r");
  while (status && fgets(line, sizeof line, status))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (status) fclose(status);
  return kb;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s INPUTS OUTPUTS\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) {
    perror(in ? argv[2] : argv[1]);
    return 2;
  }
  fseek(in, 0, SEEK_END);
  long bytes = ftell(in), n = bytes / (long)sizeof(step_input);
  rewind(in);
  step_input *inputs = malloc((size_t)n * sizeof *inputs + 1);
  double *us = malloc((size_t)n * sizeof *us + 1);
  if (n < 1 || bytes % (long)sizeof(step_input) || !inputs || !us ||
      fread(inputs, sizeof *inputs, (size_t)n, in) != (size_t)n) {
    fprintf(stderr, "%s: cannot read its inputs (" INPUT_KIND ", at least one step)\n", argv[1]);
    return 2;
  }
  if (rnnx_model_init() != 0) return 1;
  for (long i = 0; i < n; i++) {
    double start = now_us();
    const float *outputs = STEP(inputs[i]);
    us[i] = now_us() - start;
    if (!outputs) {
      fprintf(stderr, "step %ld failed\n", i);
      return 1;
    }
    fwrite(outputs, sizeof *outputs, RNNX_OUTPUTS, out);
  }
  if (fclose(out) != 0) {
    perror(argv[2]);
    return 2;
  }
  qsort(us, (size_t)n, sizeof *us, by_value);
  printf("{\"steps\": %ld, \"step_us_p50\": %.3f, \"step_us_p95\": %.3f, \"max_rss_kb\": %ld, \"outputs\": %d, "
         "\"arena_bytes\": %d}\n", n, us[(n - 1) / 2], us[(n - 1) * 95 / 100], peak_rss_kb(), RNNX_OUTPUTS,
         RNNX_ARENA_BYTES);
  return 0;
}
