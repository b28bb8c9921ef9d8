/* What the example firmware needs from the chip, for Cortex-M and RISC-V:
 * - semihosting: the debugger (qemu here; OpenOCD on a board) serves host files and the exit code;
 * - an instruction counter: RISC-V's minstret; on Cortex-M the SysTick counter, which under
 *   `qemu -icount shift=0` advances with executed instructions (board_counter() counts up).
 */
#ifndef RNNX_BOARD_H
#define RNNX_BOARD_H
#include <stdint.h>

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06, SYS_EXIT_EXTENDED = 0x20 };
enum { OPEN_READ_BINARY = 1, OPEN_WRITE_BINARY = 5 };  /* fopen modes "rb", "wb" */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline long semihost(long op, void *args) {
#if defined(__arm__)
    register long r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
#elif defined(__riscv)
    register long a0 __asm__("a0") = op;
    register void *a1 __asm__("a1") = args;
    /* the RISC-V semihosting trap: an ebreak between these two exact uncompressed no-ops */
    __asm__ volatile(".option push\n.option norvc\nslli x0, x0, 0x1f\nebreak\nsrai x0, x0, 7\n.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
#else
#error "semihosting: unsupported architecture"
#endif
}

static inline long host_open(const char *name, long length, long mode) {
    long args[3] = {(long)name, mode, length};
    return semihost(SYS_OPEN, args);
}

/* Both return the number of bytes NOT transferred (semihosting's convention): 0 on success. */
static inline long host_read(long file, void *buffer, long bytes) {
    long args[3] = {file, (long)buffer, bytes};
    return semihost(SYS_READ, args);
}

static inline long host_write(long file, const void *buffer, long bytes) {
    long args[3] = {file, (long)buffer, bytes};
    return semihost(SYS_WRITE, args);
}

static inline void host_close(long file) { semihost(SYS_CLOSE, &file); }

static inline __attribute__((noreturn)) void host_exit(long code) {
    long args[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    semihost(SYS_EXIT_EXTENDED, args);
    for (;;) {}
}

#if defined(__arm__)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

static inline void board_counter_start(void) {
    SYST_RVR = 0xFFFFFF;  /* 24 bits: wraps after 16.7 M ticks, far more than one step */
    SYST_CVR = 0;
    SYST_CSR = 5;         /* enable, clocked by the processor clock, no interrupt */
}

static inline uint32_t board_counter(void) { return (0xFFFFFF - SYST_CVR) & 0xFFFFFF; }
static inline uint32_t board_counter_since(uint32_t start) { return (board_counter() - start) & 0xFFFFFF; }

/* 2n instructions (n > 0), to measure instructions per SysTick tick */
static inline void board_spin(uint32_t n) {
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}
#elif defined(__riscv)
static inline void board_counter_start(void) {}
static inline uint32_t board_counter(void) {
    uint32_t n;
    __asm__ volatile(".option push\n.option arch, +zicsr\ncsrr %0, minstret\n.option pop" : "=r"(n));
    return n;
}
static inline uint32_t board_counter_since(uint32_t start) { return board_counter() - start; }

static inline void board_spin(uint32_t n) {
    __asm__ volatile("1: addi %0, %0, -1\n bnez %0, 1b" : "+r"(n));
}
#endif
#endif
