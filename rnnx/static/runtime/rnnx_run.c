/* rnnx-run TOKENS LOGITS: one step per token of TOKENS (int64, little-endian) from the initial state; the
   logits (float32, steps x RNNX_VOCAB) go to LOGITS and one JSON line of figures to stdout. Only this
   runner's own buffers come from malloc; the model uses its static arena. */
#define _POSIX_C_SOURCE 199309L  /* clock_gettime under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rnnx_model.h"

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
    fprintf(stderr, "usage: %s TOKENS LOGITS\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) {
    perror(in ? argv[2] : argv[1]);
    return 2;
  }
  fseek(in, 0, SEEK_END);
  long n = ftell(in) / (long)sizeof(int64_t);
  rewind(in);
  int64_t *tokens = malloc((size_t)n * sizeof *tokens + 1);
  double *us = malloc((size_t)n * sizeof *us + 1);
  if (n < 1 || !tokens || !us || fread(tokens, sizeof *tokens, (size_t)n, in) != (size_t)n) {
    fprintf(stderr, "%s: cannot read its tokens (int64, at least one)\n", argv[1]);
    return 2;
  }
  if (rnnx_model_init() != 0) return 1;
  for (long i = 0; i < n; i++) {
    double start = now_us();
    const float *logits = rnnx_model_step(tokens[i]);
    us[i] = now_us() - start;
    if (!logits) {
      fprintf(stderr, "step %ld failed\n", i);
      return 1;
    }
    fwrite(logits, sizeof *logits, RNNX_VOCAB, out);
  }
  if (fclose(out) != 0) {
    perror(argv[2]);
    return 2;
  }
  qsort(us, (size_t)n, sizeof *us, by_value);
  printf("{\"steps\": %ld, \"step_us_p50\": %.3f, \"step_us_p95\": %.3f, \"max_rss_kb\": %ld, \"vocab\": %d, "
         "\"arena_bytes\": %d}\n", n, us[(n - 1) / 2], us[(n - 1) * 95 / 100], peak_rss_kb(), RNNX_VOCAB,
         RNNX_ARENA_BYTES);
  return 0;
}
