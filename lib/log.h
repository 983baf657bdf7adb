/*
 * Diagnostics on stderr, one line each, prefixed with "minivmm: ": every
 * error any command prints reads "minivmm: error: ...", every warning
 * "minivmm: warning: ..." (scripts and tests grep for these), info lines
 * (reports, progress) "minivmm: ...".
 */
#ifndef MINIVMM_LOG_H
#define MINIVMM_LOG_H

#include <stdarg.h>

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debug messages appear only with MINIVMM_DEBUG=1 in the environment. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Silence everything but nothing else changes (fuzzers call this: their
 * inputs are meant to fail, and printing each failure slows them down). */
void log_set_quiet(int quiet);

#endif
