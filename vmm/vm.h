/*
 * One virtual machine: KVM handles, RAM, buses, vCPUs, devices, and how the
 * run ends.
 *
 * Life of a VM (vmm/run.c drives it):
 *   vm_create     open /dev/kvm, check capabilities, create VM, RAM, irqchip
 *   device_create_all   every registered device sets itself up (devices/device.h)
 *   loader_load   place the kernel and fill vm->boot (vmm/loader.h)
 *   vm_run        start the vCPU threads, wait until one calls vm_stop
 *   device_stop_all, --stats, device_destroy_all
 *   vm_destroy
 *
 * Devices reach the hypervisor only through vm->ops (struct vm_ops below:
 * irqfd, ioeventfd, interrupt lines, read-only slots, coalesced MMIO), whose
 * KVM implementation is vmm/vm_kvm.c; guest memory through vm->mem
 * (vmm/memory.h, plain code). A unit test fills a zeroed struct vm with its
 * own ops and fake RAM and runs a device without /dev/kvm.
 *
 * vm_stop may be called from any thread (a device, a vCPU, a signal
 * watcher); the first call decides the exit status.
 */
#ifndef MINIVMM_VM_H
#define MINIVMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "lib/cli.h"
#include "vmm/memory.h"

struct vcpu;
struct vm;
struct device;

/* What devices ask of the hypervisor. Each returns 0 or -1 (errno set);
 * assign false undoes an earlier assign. */
struct vm_ops {
	/* A write to eventfd fd raises edge-triggered line gsi. */
	int (*irqfd)(struct vm *vm, int fd, uint32_t gsi, bool assign);
	/* A guest write of len bytes equal to datamatch at addr signals fd
	 * instead of exiting. */
	int (*ioeventfd)(struct vm *vm, int fd, uint64_t addr, uint32_t len,
			 uint64_t datamatch, bool assign);
	/* Set an interrupt line's level. */
	int (*irq_line)(struct vm *vm, uint32_t gsi, int level);
	/* Map size bytes at host into the guest at gpa, read-only: guest reads
	 * do not exit, writes still exit as MMIO. Returns a slot (>= 0) for
	 * unmap_readonly, or -1 (unsupported: reads exit as before). */
	int (*map_readonly)(struct vm *vm, uint64_t gpa, void *host, uint64_t size);
	void (*unmap_readonly)(struct vm *vm, int slot, uint64_t gpa);
	/* Queue the guest's writes to [addr, addr + len) instead of exiting;
	 * vm_coalesced_flush replays them. -1 if unsupported. */
	int (*coalesce_mmio)(struct vm *vm, uint64_t addr, uint32_t len, bool assign);
	/* Replay queued writes by calling replay for each (vm_coalesced_flush). */
	void (*coalesced_flush)(struct vm *vm,
				void (*replay)(struct vm *vm, uint64_t addr, const uint8_t *data,
					       uint32_t len));
};

/* The KVM implementation (vmm/vm_kvm.c), set by vm_create. */
extern const struct vm_ops vm_kvm_ops;

/* How the boot vCPU starts (filled by a loader). */
enum boot_mode {
	BOOT_MODE_LONG64,   /* 64-bit, paging on, low 4 GiB identity-mapped */
	BOOT_MODE_PROT32,   /* 32-bit protected mode, flat segments, paging off */
};

struct boot_state {
	enum boot_mode mode;
	uint64_t rip, rsp, rsi, rdi, rax, rbx;
	uint64_t gdt; /* where vcpu.c writes the boot GDT; 0: LAYOUT_GDT */
	bool loaded;
	const char *format; /* "elf64", "multiboot", "bzimage", ... */
};

/* A platform device that the guest discovers through firmware tables
 * (ACPI DSDT): virtio-mmio windows, for instance. Devices add themselves at
 * create time; the ACPI builder reads the list when the boot loader runs. */
struct platform_dev {
	const char *hid;  /* ACPI _HID, e.g. "LNRO0005" */
	uint64_t mmio_base, mmio_size;
	uint64_t pio_base, pio_size; /* 0 if none */
	uint32_t irq;     /* GSI, 0 if none */
	bool irq_edge;    /* edge (true) or level (false) triggered */
	char name[8];     /* ACPI name, e.g. "VR00" */
};

#define VM_MAX_PLATFORM_DEVS 32
#define VM_MAX_VCPUS 64
#define VM_EXIT_REASONS 64

/* Boot milestones, in nanoseconds since the VM started (0 = not reached). */
enum vm_milestone {
	MILESTONE_FIRST_OUTPUT, /* first byte on the serial console */
	MILESTONE_INIT,         /* the guest's /init announced itself */
	MILESTONE_READY,        /* --ready-marker seen on the console */
	MILESTONE_COUNT,
};

struct vm {
	const struct vm_ops *ops;
	int kvm_fd, vm_fd;
	int vcpu_mmap_size;
	struct guest_mem mem;
	struct bus pio, mmio;
	const struct config *cfg;

	int n_vcpus;
	struct vcpu *vcpus;
	struct boot_state boot;

	struct platform_dev platform[VM_MAX_PLATFORM_DEVS];
	int n_platform;
	uint64_t next_mmio;  /* allocator for device MMIO windows */
	uint32_t next_irq;   /* allocator for GSIs */
	struct device *devices; /* instances, newest first (devices/device.h) */

	/* KVM state behind vm_kvm_ops. */
	uint32_t next_slot;  /* memory slots for read-only device pages */
	void *coalesced_ring; /* struct kvm_coalesced_mmio_ring, in vCPU 0's run page */
	uint32_t coalesced_max;
	pthread_mutex_t coalesced_lock;

	/* How the run ends. */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	atomic_bool stopping;
	int exit_status;
	char stop_reason[128];
	/* Teardown, once vm_run returned. A device whose teardown failed (a
	 * write-back that did not complete) sets stop_failure: the run's exit
	 * status if the guest itself stopped cleanly (main thread only). The
	 * interrupt handler: vm_on_interrupt (under stop_lock). */
	int stop_failure;
	void (*interrupt_fn)(void *ctx, int sig);
	void *interrupt_ctx;
	int interrupt_sig;

	/* Figures for --stats and the report. */
	uint64_t start_ns;
	_Atomic uint64_t exits[VM_EXIT_REASONS];
	_Atomic uint64_t milestones[MILESTONE_COUNT];
};

/* Create the VM with cfg's --memory and --cpus. On failure prints why
 * (naming /dev/kvm and what to do when it is missing) and returns the
 * process exit status to use (EXIT_SETUP); 0 on success. */
int vm_create(struct vm *vm, const struct config *cfg, uint64_t ram_size, int n_vcpus);
/* /dev/kvm opened and checked (API version, the capabilities minivmm
 * needs): its fd, or -1 after the message vm_create prints. */
int vm_kvm_open(void);
/* The same check alone, before anything slow (an image download): 0, or
 * EXIT_SETUP after the message. */
int vm_kvm_probe(void);
void vm_destroy(struct vm *vm);

/* Start all vCPUs (the boot vCPU from vm->boot) and block until vm_stop.
 * Returns the exit status. */
int vm_run(struct vm *vm);

/* Ask the VM to stop with the given process exit status; the first caller
 * wins. reason is shown in the report ("guest powered off"). Thread-safe,
 * async-signal-unsafe. */
void vm_stop(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool vm_is_stopping(const struct vm *vm);

/* A stop signal while the devices are torn down (vmm/run.c's signal
 * thread): passed to the handler a device set for a long step of its
 * teardown (write-back), or kept and passed when one is set (false: no
 * handler yet). fn NULL removes the handler. */
bool vm_interrupt(struct vm *vm, int sig);
void vm_on_interrupt(struct vm *vm, void (*fn)(void *ctx, int sig), void *ctx);

/* Does the host CPU offer hardware virtualization (vmx or svm)? A KVM
 * without it (a software backend such as kvm_pvm) runs bare-metal test
 * guests but cannot boot an unmodified Linux kernel. */
bool vm_host_has_hw_virt(void);

/* Allocate a page-aligned MMIO window in the device hole, or 0 if full. */
uint64_t vm_alloc_mmio(struct vm *vm, uint64_t size);
/* Allocate an interrupt line (GSI) for a device, or 0 if none is left. */
uint32_t vm_alloc_irq(struct vm *vm);
int vm_add_platform_dev(struct vm *vm, const struct platform_dev *dev);

/* Set an interrupt line's level (vm->ops->irq_line). */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);
/* Apply the MMIO writes the hypervisor queued in coalesced zones: each goes
 * to its bus handler (not counted as an exit). Any thread, any lock held:
 * the handler of a coalesced range must take no lock of its own. */
void vm_coalesced_flush(struct vm *vm);
/* Fill the parts of *vm a device uses without a hypervisor (allocators,
 * buses, locks): vm_create calls it; unit tests call it, then set ops and
 * mem themselves. */
void vm_init_common(struct vm *vm, const struct config *cfg);

/* Record a boot milestone the first time it happens. */
void vm_milestone(struct vm *vm, enum vm_milestone m);

/* Write --stats FILE if asked: exit counts by reason, wall time, milestones,
 * plus every registered stats source (lib/stats.h). */
int vm_write_stats(struct vm *vm, const char *path, uint64_t wall_ns);

#endif
