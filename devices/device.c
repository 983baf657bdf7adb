#include "devices/device.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdlib.h>
#include <string.h>

#define DEVICE_MAX 64

/* The types, filled by constructors before main: a table of code, not of
 * state (instances live in struct vm). */
static const struct device_ops *types[DEVICE_MAX];
static int n_types;

void device_register(const struct device_ops *ops)
{
	if (n_types == DEVICE_MAX)
		abort();
	/* Insertion sort by order keeps creation order stable. */
	int i = n_types++;
	while (i > 0 && types[i - 1]->order > ops->order) {
		types[i] = types[i - 1];
		i--;
	}
	types[i] = ops;
}

int device_add(struct vm *vm, const struct device_ops *ops, void *instance)
{
	struct device *d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("%s: out of memory", ops->name);
		return -1;
	}
	d->ops = ops;
	d->instance = instance;
	d->next = vm->devices;
	vm->devices = d;
	return 0;
}

static int create_type(struct vm *vm, const struct device_ops *t)
{
	if (t->create && t->create(vm) < 0) {
		log_error("device %s could not be created", t->name);
		return -1;
	}
	return 0;
}

int device_create_all(struct vm *vm)
{
	for (int i = 0; i < n_types; i++)
		if (create_type(vm, types[i]) < 0)
			return -1;
	return 0;
}

int device_create(struct vm *vm, const char *name)
{
	for (int i = 0; i < n_types; i++)
		if (strcmp(types[i]->name, name) == 0)
			return create_type(vm, types[i]);
	return -1;
}

void device_stop_all(struct vm *vm)
{
	for (struct device *d = vm->devices; d; d = d->next)
		if (d->ops->stop)
			d->ops->stop(d->instance);
}

void device_destroy_all(struct vm *vm)
{
	while (vm->devices) {
		struct device *d = vm->devices;
		vm->devices = d->next;
		if (d->ops->destroy)
			d->ops->destroy(d->instance);
		free(d);
	}
}
