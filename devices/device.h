/*
 * Device registry and device instances.
 *
 * A device type is one file that describes itself with a struct device_ops
 * and registers it with DEVICE_REGISTER. At VM creation device_create_all
 * calls every type's create() in ascending .order. create() reads its own
 * options from vm->cfg (declared with CLI_OPTION in the same file) and
 * makes zero or more instances (virtio-blk makes one per --disk): each
 * claims its port or MMIO ranges on vm->pio / vm->mmio, adds itself to the
 * firmware tables (vm_add_platform_dev), starts any thread, and is then
 * handed to the VM with device_add. The VM owns the list (vm->devices).
 *
 * The end of a run, once the vCPUs have stopped (vmm/run.c):
 *   device_stop_all     stop(instance), newest first: join threads, final
 *                       figures and outcomes (the report, write-back).
 *                       Stats sources stay readable: --stats is written next.
 *   device_destroy_all  destroy(instance), newest first: free everything.
 * Both run even when setup failed part-way; an instance that create() could
 * not finish is cleaned up by create() itself and never added.
 * Neither main() nor the vCPU loop changes when a device is added.
 */
#ifndef MINIVMM_DEVICE_H
#define MINIVMM_DEVICE_H

struct vm;

/* Orders: platform devices first, then buses' devices. */
enum {
	DEVICE_ORDER_PLATFORM = 10,
	DEVICE_ORDER_VIRTIO = 50,
};

struct device_ops {
	const char *name;
	int order;
	/* Make this type's instances (device_add each). Returns 0, or -1
	 * after printing why (the run then exits EXIT_SETUP). */
	int (*create)(struct vm *vm);
	/* Optional. The vCPUs have stopped; must not fail. */
	void (*stop)(void *instance);
	/* Optional. After stop and after --stats: release everything. */
	void (*destroy)(void *instance);
};

/* One instance in the VM's list. */
struct device {
	const struct device_ops *ops;
	void *instance;
	struct device *next; /* older instances */
};

void device_register(const struct device_ops *ops);
/* Hand a finished instance to vm (ops->stop/destroy will get it).
 * 0, or -1 out of memory (the caller still owns the instance). */
int device_add(struct vm *vm, const struct device_ops *ops, void *instance);
int device_create_all(struct vm *vm);
/* Create only the type called name (tests create one device at a time).
 * -1 if there is none or its create() fails. */
int device_create(struct vm *vm, const char *name);
void device_stop_all(struct vm *vm);
void device_destroy_all(struct vm *vm);

#define DEVICE_REGISTER(ops)                                                    \
	__attribute__((constructor)) static void device_reg_##ops(void)         \
	{ device_register(&(ops)); }

#endif
