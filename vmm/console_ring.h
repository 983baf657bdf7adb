/*
 * The last bytes the guest printed on its console, kept for a crash dump
 * ("last console output"): a fixed ring of CONSOLE_RING_BYTES, written by
 * whichever vCPU thread drives the UART and read by a dump that may run on
 * another thread, so both sides take the ring's lock.
 *
 * console_ring_format turns the bytes into at most max_lines lines that a
 * terminal prints safely: bytes outside printable ASCII (escape sequences,
 * UTF-8, NULs) become \xNN, a backslash becomes \\, the CR of a CR LF is
 * dropped. A line the ring cut at its start begins with "...".
 */
#ifndef MINIVMM_CONSOLE_RING_H
#define MINIVMM_CONSOLE_RING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_RING_BYTES 2048
#define CONSOLE_RING_LINES 16
/* Worst case of console_ring_format for a full ring: every byte escaped
 * (4 characters), plus an indent, a "..." and a newline per line. */
#define CONSOLE_RING_TEXT (CONSOLE_RING_BYTES * 4 + CONSOLE_RING_LINES * 8 + 1)

struct console_ring {
	pthread_mutex_t lock;
	uint8_t buf[CONSOLE_RING_BYTES];
	size_t head;    /* where the next byte goes */
	uint64_t total; /* bytes ever put */
};

#define CONSOLE_RING_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}

void console_ring_put(struct console_ring *r, const uint8_t *bytes, size_t n);

/* Copy the ring out, oldest byte first, into out (CONSOLE_RING_BYTES):
 * returns the number of bytes; *cut says older bytes were dropped. */
size_t console_ring_copy(struct console_ring *r, uint8_t *out, bool *cut);

/* The last max_lines lines of bytes[0..n) as escaped text, each indented
 * "  | " and ending in '\n', NUL-terminated in out (truncated to outlen). A last line without
 * its newline yet counts as a line. cut: the first line may be the tail
 * of a longer one (it is marked "..."). Returns the number of lines. */
size_t console_ring_format(const uint8_t *bytes, size_t n, bool cut, size_t max_lines,
			   char *out, size_t outlen);

/* console_ring_copy then console_ring_format with CONSOLE_RING_LINES. */
size_t console_ring_lines(struct console_ring *r, char *out, size_t outlen);

#endif
