/* Cortex-M startup: the vector table and a reset handler that enables the FPU, copies .data from flash
 * to RAM, zeroes .bss and calls main. A fault ends the program through semihosting with exit code 128 +
 * the exception number, so an emulator returns at once instead of hanging. */
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t __stack_top, __data_start, __data_end, __data_load, __bss_start, __bss_end;
int main(void);

#define CPACR (*(volatile uint32_t *)0xE000ED88)
#define ICSR (*(volatile uint32_t *)0xE000ED04)

__attribute__((noreturn)) void reset_handler(void) {
    CPACR |= 0xFu << 20;  /* full access to CP10/CP11 (the FPU; Helium on Cortex-M55) before any FP instruction */
    __asm__ volatile("dsb\n isb" ::: "memory");
    memcpy(&__data_start, &__data_load, (char *)&__data_end - (char *)&__data_start);
    memset(&__bss_start, 0, (char *)&__bss_end - (char *)&__bss_start);
    host_exit(main());
}

__attribute__((noreturn)) static void fault_handler(void) { host_exit(128 + (ICSR & 0x1FF)); }

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, reset_handler,
    fault_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,  /* NMI..UsageFault, SecureFault */
    0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,                     /* SVC, DebugMon, PendSV, SysTick */
};
