/*
 * The monotonic clock every layer measures durations with (lib/clock.c):
 * CLOCK_MONOTONIC, so a wall-clock step (NTP, date -s) never makes a
 * duration negative or a deadline jump. Not for timestamps a user reads:
 * its zero is arbitrary (boot time on Linux).
 */
#ifndef MINIVMM_LIB_CLOCK_H
#define MINIVMM_LIB_CLOCK_H

#include <stdint.h>

#define CLOCK_NS_PER_S UINT64_C(1000000000)
#define CLOCK_NS_PER_MS UINT64_C(1000000)

/* Nanoseconds since an arbitrary fixed point; never goes back. */
uint64_t clock_now_ns(void);
/* The same in seconds, for figures printed to people. */
double clock_now_s(void);

#endif
