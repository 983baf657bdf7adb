/*
 * The ACPI PM timer device (devices/pm_timer.c): ACPI_PM_TIMER_PORT
 * (vmm/acpi.h) reads a 32-bit count of 3.579545 MHz ticks since the VM
 * was created, taken from the host's monotonic clock.
 */
#ifndef MINIVMM_PM_TIMER_H
#define MINIVMM_PM_TIMER_H

#include <stdint.h>

/* The register's value ns nanoseconds after the count began (it wraps at
 * 2^32 ticks, as the hardware's does). */
uint32_t pm_timer_ticks(uint64_t ns);

#endif
