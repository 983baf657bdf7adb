/*
 * What the guest prints on its console, watched on the way to stdout.
 *
 * Records boot milestones: the first byte (MILESTONE_FIRST_OUTPUT), the
 * init marker "MINIVMM-INIT" that guest init scripts print
 * (MILESTONE_INIT), and the user's --ready-marker (MILESTONE_READY).
 * Keeps the last lines for a crash dump (vmm/console_ring.h).
 */
#ifndef MINIVMM_CONSOLE_H
#define MINIVMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

struct vm;

#define CONSOLE_INIT_MARKER "MINIVMM-INIT"

/* Called by the serial device for every byte the guest transmits. */
void console_output(struct vm *vm, uint8_t byte);
/* Flush buffered output (at exit). */
void console_flush(void);
/* The last lines the guest printed (console_ring_format's text), into out
 * of CONSOLE_RING_TEXT bytes; returns the number of lines. Any thread. */
size_t console_last_lines(char *out, size_t outlen);

#endif
