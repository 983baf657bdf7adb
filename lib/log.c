#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_quiet;

void log_set_quiet(int quiet)
{
	log_quiet = quiet;
}

__attribute__((format(printf, 2, 0)))
static void log_v(const char *level, const char *fmt, va_list ap)
{
	if (log_quiet)
		return;
	/* One fprintf per line so that lines from several threads do not mix;
	 * a line longer than buf (an escaped server message) is not cut. */
	char buf[2048], *line = buf;
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n >= (int)sizeof(buf) && (line = malloc((size_t)n + 1)) != NULL)
		vsnprintf(line, (size_t)n + 1, fmt, again);
	else if (!line)
		line = buf;
	va_end(again);
	fprintf(stderr, "minivmm: %s%s\n", level, line);
	if (line != buf)
		free(line);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v("error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v("", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	static int enabled = -1;
	if (enabled < 0) {
		const char *e = getenv("MINIVMM_DEBUG");
		enabled = e && strcmp(e, "0") != 0;
	}
	if (!enabled)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v("debug: ", fmt, ap);
	va_end(ap);
}
