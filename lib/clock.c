/* The monotonic clock (lib/clock.h). */
#include "lib/clock.h"

#include <time.h>

uint64_t clock_now_ns(void)
{
	struct timespec ts;
	/* Cannot fail with a valid clock id and pointer (clock_gettime(2)). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CLOCK_NS_PER_S + (uint64_t)ts.tv_nsec;
}

double clock_now_s(void)
{
	return (double)clock_now_ns() / 1e9;
}
