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
	/* One fprintf per line so that lines from several threads do not mix. */
	char buf[2048];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "minivmm: %s%s\n", level, buf);
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
