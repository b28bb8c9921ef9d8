/* Example firmware: the rnnx model on tokens the host serves through semihosting (qemu, or OpenOCD on a
 * board). It reads tokens.bin (int32 little-endian, one per step) and writes
 * - logits.bin: RNNX_VOCAB float32 per step;
 * - counts.bin: uint32 counter ticks of a calibration spin of 2 * SPIN instructions, 2 * SPIN, then the
 *   ticks of each step (board.h says what the counter counts).
 * Exit code 0; 2 when a file cannot be opened, 3 when one cannot be written, 4 when the model fails to start. */
#include <string.h>

#include "board.h"
#include "rnnx_model.h"

#define SPIN 100000

static long open_file(const char *name, long mode) { return host_open(name, (long)strlen(name), mode); }

int main(void) {
    long tokens = open_file("tokens.bin", OPEN_READ_BINARY);
    long logits = open_file("logits.bin", OPEN_WRITE_BINARY);
    long counts = open_file("counts.bin", OPEN_WRITE_BINARY);
    if (tokens < 0 || logits < 0 || counts < 0) return 2;
    if (rnnx_model_init() != 0) return 4;
    board_counter_start();
    uint32_t start = board_counter();
    board_spin(SPIN);
    uint32_t calibration[2] = {board_counter_since(start), 2 * SPIN};
    if (host_write(counts, calibration, sizeof calibration)) return 3;
    int32_t token;
    while (host_read(tokens, &token, sizeof token) == 0) {
        start = board_counter();
        const float *out = rnnx_model_step(token);
        uint32_t ticks = board_counter_since(start);
        if (!out) return 5;
        if (host_write(logits, out, RNNX_VOCAB * sizeof(float)) || host_write(counts, &ticks, sizeof ticks))
            return 3;
    }
    host_close(tokens);
    host_close(logits);
    host_close(counts);
    return 0;
}
