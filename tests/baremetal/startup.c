/* startup.c - the smallest Cortex-M start-up for tests/baremetal/main.c on qemu's MPS2 AN386:
   a vector table, a reset handler that sets up .data and .bss and calls main, and a monotonic
   clock from SysTick (the clock batch.h gets through BATCH_CLOCK_NS). Output goes through
   semihosting (newlib's librdimon). */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];
extern void initialise_monitor_handles(void);
int main(void);
void bm_reset(void);
void bm_fault(void);
void bm_systick(void);
uint64_t bm_clock_ns(void);

/* SysTick: a 24-bit down-counter on the 25 MHz core clock; each wrap is counted. */
#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define BM_RELOAD 0xFFFFFFu
#define BM_NS_PER_TICK 40u
static volatile uint32_t bm_wraps;

void bm_systick(void) { bm_wraps++; }

uint64_t bm_clock_ns(void) {
    uint32_t w, v;
    do { w = bm_wraps; v = SYST_CVR; } while (w != bm_wraps);   /* a wrap in between: read again */
    uint64_t ticks = (uint64_t)w * (BM_RELOAD + 1u) + (BM_RELOAD - v);
    return ticks * BM_NS_PER_TICK;
}

void bm_fault(void) { abort(); }

void bm_reset(void) {
    for (uint32_t *s = __data_load, *d = __data_start; d < __data_end;) *d++ = *s++;
    for (uint32_t* d = __bss_start; d < __bss_end;) *d++ = 0;
    SYST_RVR = BM_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u;   /* core clock, interrupt on wrap, enabled */
    initialise_monitor_handles();
    exit(main());
}

/* initial stack pointer, reset, NMI, hard fault, 10 more faults and reserved slots, SVC, debug
   monitor, reserved, PendSV, SysTick */
__attribute__((section(".vectors"), used)) static void (*const bm_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top, bm_reset, bm_fault, bm_fault, bm_fault, bm_fault, bm_fault,
    0, 0, 0, 0, bm_fault, bm_fault, 0, bm_fault, bm_systick,
};
