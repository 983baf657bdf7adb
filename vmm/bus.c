#include "vmm/bus.h"
#include "lib/log.h"

#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn fn,
		 void *opaque, const char *owner)
{
	if (len == 0 || base + len < base) {
		log_error("%s: bad %s range 0x%llx+0x%llx", owner, bus->name,
			  (unsigned long long)base, (unsigned long long)len);
		return -1;
	}
	if (bus->n == BUS_MAX_RANGES) {
		log_error("%s: too many %s ranges", owner, bus->name);
		return -1;
	}
	int pos = 0;
	while (pos < bus->n && bus->ranges[pos].base < base)
		pos++;
	/* Overlap with the neighbours, the only candidates in a sorted table. */
	if (pos > 0) {
		const struct bus_range *p = &bus->ranges[pos - 1];
		if (p->base + p->len > base) {
			log_error("%s: %s range 0x%llx overlaps %s", owner, bus->name,
				  (unsigned long long)base, p->owner);
			return -1;
		}
	}
	if (pos < bus->n && base + len > bus->ranges[pos].base) {
		log_error("%s: %s range 0x%llx overlaps %s", owner, bus->name,
			  (unsigned long long)base, bus->ranges[pos].owner);
		return -1;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(size_t)(bus->n - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){.base = base, .len = len, .handler = fn,
					      .opaque = opaque, .owner = owner};
	bus->n++;
	return 0;
}

void bus_unregister(struct bus *bus, uint64_t base)
{
	for (int i = 0; i < bus->n; i++) {
		if (bus->ranges[i].base != base)
			continue;
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(size_t)(bus->n - i - 1) * sizeof(bus->ranges[0]));
		bus->n--;
		return;
	}
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	int lo = 0, hi = bus->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];
		if (addr < r->base) {
			hi = mid - 1;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			/* The whole access must fall inside the range. */
			if (len > r->len - (addr - r->base))
				return NULL;
			return r;
		}
	}
	return NULL;
}

bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write)
{
	struct bus_range *r = (struct bus_range *)bus_find(bus, addr, len);
	if (!r) {
		atomic_fetch_add_explicit(&bus->unowned, 1, memory_order_relaxed);
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	atomic_fetch_add_explicit(&r->accesses, 1, memory_order_relaxed);
	if (!is_write)
		memset(data, 0, len);
	r->handler(r->opaque, addr - r->base, data, len, is_write);
	return true;
}
