/*
 * Address dispatch for port I/O and MMIO exits.
 *
 * A device registers the ranges it owns at setup time, before any vCPU runs,
 * and unregisters them when it is destroyed, after the vCPUs have stopped;
 * in between the table is read-only and lookups need no lock. The vCPU loop
 * calls bus_dispatch and knows nothing else about devices (the Firecracker
 * boundary). Handlers run on the vCPU thread: they must be quick and hand
 * real work to a device thread.
 */
#ifndef MINIVMM_BUS_H
#define MINIVMM_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the range's base; data holds len bytes (1, 2, 4 or
 * 8) in guest byte order. For a read the handler fills data; a handler that
 * does not fill it leaves zeros. */
typedef void (*bus_handler_fn)(void *opaque, uint64_t offset, uint8_t *data,
			       uint32_t len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_handler_fn handler;
	void *opaque;
	const char *owner; /* device name, for diagnostics and --stats */
	_Atomic uint64_t accesses; /* exits served, for --stats */
};

#define BUS_MAX_RANGES 128

struct bus {
	const char *name; /* "pio" or "mmio" */
	struct bus_range ranges[BUS_MAX_RANGES];
	int n;
	_Atomic uint64_t unowned; /* accesses nobody claimed */
};

/* Returns 0, or -1 if the range is empty, wraps, overlaps another range, or
 * the table is full (the message names both owners). */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn fn,
		 void *opaque, const char *owner);

/* Route one access. Returns false if no device owns addr..addr+len-1; then a
 * read sees all ones, as on real hardware with nothing on the bus. */
bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write);

/* Remove the range that starts at base (no-op if none). Only while no
 * vCPU runs: setup failures and device teardown. */
void bus_unregister(struct bus *bus, uint64_t base);

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len);

#endif
