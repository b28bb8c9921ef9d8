/* Example firmware: the rnnx model on inputs the host serves through semihosting (qemu, or OpenOCD on a
 * board). It reads, one step at a time, tokens.bin (int32 little-endian, one per step) or, for a model of
 * feature vectors, features.bin (RNNX_INPUT_FEATURES float32 per step), and writes
 * - outputs.bin: RNNX_OUTPUTS float32 per step (logits, class scores or a forecast);
 * - counts.bin: uint32 counter ticks of a calibration spin of 2 * SPIN instructions, 2 * SPIN, then the
 *   ticks of each step (board.h says what the counter counts).
 * Exit code 0; 2 when a file cannot be opened, 3 when one cannot be written, 4 when the model fails to start,
 * 5 when a step fails. */
#include <string.h>

#include "board.h"
#include "rnnx_model.h"

#define SPIN 100000

/* What one step reads from the host, and the step on it */
#ifdef RNNX_INPUT_FEATURES
#define INPUTS_FILE "features.bin"
typedef float step_input[RNNX_INPUT_FEATURES];
#define STEP(input) rnnx_model_step(input)
#else
#define INPUTS_FILE "tokens.bin"
typedef int32_t step_input[1];
#define STEP(input) rnnx_model_step((input)[0])
#endif

static long open_file(const char *name, long mode) { return host_open(name, (long)strlen(name), mode); }

int main(void) {
    long inputs = open_file(INPUTS_FILE, OPEN_READ_BINARY);
    long outputs = open_file("outputs.bin", OPEN_WRITE_BINARY);
    long counts = open_file("counts.bin", OPEN_WRITE_BINARY);
    if (inputs < 0 || outputs < 0 || counts < 0) return 2;
    if (rnnx_model_init() != 0) return 4;
    board_counter_start();
    uint32_t start = board_counter();
    board_spin(SPIN);
    uint32_t calibration[2] = {board_counter_since(start), 2 * SPIN};
    if (host_write(counts, calibration, sizeof calibration)) return 3;
    step_input input;
    while (host_read(inputs, input, sizeof input) == 0) {
        start = board_counter();
        const float *out = STEP(input);
        uint32_t ticks = board_counter_since(start);
        if (!out) return 5;
        if (host_write(outputs, out, RNNX_OUTPUTS * sizeof(float)) || host_write(counts, &ticks, sizeof ticks))
            return 3;
    }
    host_close(inputs);
    host_close(outputs);
    host_close(counts);
    return 0;
}
