#include "vmm/vm.h"
#include "vmm/layout.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vcpu.h"
#include "lib/clock.h"
#include "vmm/console.h"
#include "vmm/console_ring.h"
#include "vmm/crash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* KVM_GET_API_VERSION has returned 12 since Linux 2.6.22 (api.rst 4.1). */
#define KVM_API_VERSION_EXPECTED 12

static void explain_no_kvm(int err)
{
	log_error("cannot open /dev/kvm: %s", strerror(err));
	fprintf(stderr,
		"  minivmm needs the KVM hypervisor. /dev/kvm is missing or unusable when:\n"
		"  - the CPU has no hardware virtualization (Intel VT-x or AMD-V), or it is\n"
		"    disabled in the firmware settings;\n"
		"  - this machine is itself a VM whose host does not offer nested\n"
		"    virtualization (a cloud instance, a CI runner);\n"
		"  - the kvm_intel or kvm_amd module is not loaded (modprobe kvm_intel);\n"
		"  - you lack permission: add yourself to the 'kvm' group.\n"
		"  Without KVM, run minivmm inside the nested sandbox, which emulates a\n"
		"  KVM-capable machine in software:  scripts/sandbox -- build/minivmm run ...\n");
}

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

static int check_caps(int kvm_fd)
{
	char missing[512] = "";
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) > 0)
			continue;
		size_t used = strlen(missing);
		snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "",
			 required_caps[i].name);
	}
	if (missing[0]) {
		log_error("this KVM lacks capabilities minivmm needs: %s "
			  "(a newer host kernel provides them)", missing);
		return -1;
	}
	return 0;
}

int vm_kvm_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		explain_no_kvm(errno);
		return -1;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION_EXPECTED) {
		log_error("/dev/kvm speaks API version %d, minivmm needs %d", api,
			  KVM_API_VERSION_EXPECTED);
		close(fd);
		return -1;
	}
	if (check_caps(fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int vm_kvm_probe(void)
{
	int fd = vm_kvm_open();
	if (fd < 0)
		return EXIT_SETUP;
	close(fd);
	return 0;
}

/* Memory slots: RAM takes 0 and 1 (below); device pages come after. */
#define VM_FIRST_DEVICE_SLOT 16

void vm_init_common(struct vm *vm, const struct config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->cfg = cfg;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	vm->next_mmio = LAYOUT_MMIO_DEVICES;
	vm->next_irq = 5; /* ISA lines below 5 belong to the PIT, keyboard, serial */
	vm->next_slot = VM_FIRST_DEVICE_SLOT;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	pthread_mutex_init(&vm->coalesced_lock, NULL);
	vm->start_ns = clock_now_ns();
}

int vm_create(struct vm *vm, const struct config *cfg, uint64_t ram_size, int n_vcpus)
{
	vm_init_common(vm, cfg);
	vm->ops = &vm_kvm_ops;

	vm->kvm_fd = vm_kvm_open();
	if (vm->kvm_fd < 0)
		return EXIT_SETUP;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		log_error("KVM_CREATE_VM on /dev/kvm failed: %s (is another hypervisor "
			  "holding the virtualization extensions?)", strerror(errno));
		return EXIT_SETUP;
	}
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return EXIT_SETUP;
	}
	/* Intel VMX needs these two in a hole of the guest-physical map
	 * (api.rst 4.43 and 4.49); harmless on AMD. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, LAYOUT_KVM_TSS) < 0) {
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return EXIT_SETUP;
	}
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return EXIT_SETUP;
	}
	/* In-kernel PIC, IOAPIC and LAPICs, and the PIT: interrupts and timer
	 * ticks never leave the kernel. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return EXIT_SETUP;
	}
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return EXIT_SETUP;
	}

	int rc = gmem_init(&vm->mem, ram_size);
	if (rc < 0) {
		log_error("cannot allocate %" PRIu64 " bytes of guest RAM: %s", ram_size,
			  strerror(-rc));
		return EXIT_SETUP;
	}
	for (int i = 0; i < vm->mem.n_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = (uint32_t)i,
			.guest_phys_addr = vm->mem.regions[i].gpa,
			.memory_size = vm->mem.regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->mem.regions[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			log_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return EXIT_SETUP;
		}
	}

	if (vcpu_signals_init() < 0)
		return EXIT_SETUP;
	vm->n_vcpus = n_vcpus;
	vm->vcpus = calloc((size_t)n_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return EXIT_SETUP;
	for (int i = 0; i < n_vcpus; i++)
		if (vcpu_create(vm, &vm->vcpus[i], i) < 0)
			return EXIT_SETUP;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (int i = 0; i < vm->n_vcpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	gmem_free(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!atomic_load(&vm->stopping)) {
		vm->exit_status = status;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
		va_end(ap);
		atomic_store(&vm->stopping, true);
		pthread_cond_broadcast(&vm->stop_cond);
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

bool vm_is_stopping(const struct vm *vm)
{
	return atomic_load(&vm->stopping);
}

bool vm_interrupt(struct vm *vm, int sig)
{
	pthread_mutex_lock(&vm->stop_lock);
	vm->interrupt_sig = sig;
	bool taken = vm->interrupt_fn != NULL;
	if (taken)
		vm->interrupt_fn(vm->interrupt_ctx, sig);
	pthread_mutex_unlock(&vm->stop_lock);
	return taken;
}

void vm_on_interrupt(struct vm *vm, void (*fn)(void *ctx, int sig), void *ctx)
{
	pthread_mutex_lock(&vm->stop_lock);
	vm->interrupt_fn = fn;
	vm->interrupt_ctx = ctx;
	if (fn && vm->interrupt_sig)
		fn(ctx, vm->interrupt_sig); /* it came before the handler */
	pthread_mutex_unlock(&vm->stop_lock);
}

/* How often the watchdog looks for vCPUs that can never run again. */
#define VM_WATCHDOG_NS 500000000ULL

static bool all_vcpus_dead(struct vm *vm)
{
	for (int i = 0; i < vm->n_vcpus; i++)
		if (!atomic_load(&vm->vcpus[i].dead_halt))
			return false;
	return true;
}

int vm_run(struct vm *vm)
{
	if (vcpu_setup_boot(&vm->vcpus[0]) < 0)
		return EXIT_SETUP;
	vm->start_ns = clock_now_ns();
	for (int i = 0; i < vm->n_vcpus; i++) {
		if (vcpu_start(&vm->vcpus[i]) < 0) {
			vm_stop(vm, EXIT_SETUP, "cannot start vCPU %d", i);
			break;
		}
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (!atomic_load(&vm->stopping)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += VM_WATCHDOG_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		int rc = pthread_cond_timedwait(&vm->stop_cond, &vm->stop_lock, &ts);
		if (rc == ETIMEDOUT && !atomic_load(&vm->stopping)) {
			pthread_mutex_unlock(&vm->stop_lock);
			/* A vCPU found halted with interrupts off at two kicks in a
			 * row can never wake up; when all are, the guest is gone. */
			if (all_vcpus_dead(vm)) {
				vm_stop(vm, EXIT_GUEST_HUNG,
					"every vCPU halted with interrupts disabled");
			} else {
				for (int i = 0; i < vm->n_vcpus; i++)
					vcpu_kick(&vm->vcpus[i]);
			}
			pthread_mutex_lock(&vm->stop_lock);
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
	for (int i = 0; i < vm->n_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (int i = 0; i < vm->n_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	/* vCPU ioctls from another thread wait for KVM_RUN to return, so the
	 * dump of a hung guest waits until its threads are gone. */
	if (vm->exit_status == EXIT_GUEST_HUNG) {
		log_error("%s", vm->stop_reason);
		vcpu_dump(&vm->vcpus[0]);
		/* A hung guest's registers are where it stopped; what it
		 * printed last often says why. */
		char lines[CONSOLE_RING_TEXT];
		console_flush();
		console_last_lines(lines, sizeof(lines));
		crash_format_console(stderr, lines);
	} else if (getenv("MINIVMM_DUMP_ON_STOP")) {
		/* A debugging aid: where was every vCPU when the run ended? */
		for (int i = 0; i < vm->n_vcpus; i++)
			vcpu_dump(&vm->vcpus[i]);
	}
	return vm->exit_status;
}

bool vm_host_has_hw_virt(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return true; /* cannot tell: do not cry wolf */
	char line[8192];
	bool hw = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		hw = strstr(line, " vmx") || strstr(line, " svm");
		break;
	}
	fclose(f);
	return hw;
}

uint64_t vm_alloc_mmio(struct vm *vm, uint64_t size)
{
	size = (size + 0xfff) & ~0xfffULL;
	if (size == 0 || size > LAYOUT_MMIO_DEVICES_END - vm->next_mmio)
		return 0;
	uint64_t base = vm->next_mmio;
	vm->next_mmio += size;
	return base;
}

/* The IOAPIC has 24 pins (KVM_IOAPIC_NUM_PINS). */
#define VM_IRQ_LINES 24

uint32_t vm_alloc_irq(struct vm *vm)
{
	/* 8 is the RTC's; skip it so that an RTC can be added later. */
	if (vm->next_irq == 8)
		vm->next_irq++;
	if (vm->next_irq >= VM_IRQ_LINES)
		return 0;
	return vm->next_irq++;
}

int vm_add_platform_dev(struct vm *vm, const struct platform_dev *dev)
{
	if (vm->n_platform == VM_MAX_PLATFORM_DEVS)
		return -1;
	vm->platform[vm->n_platform++] = *dev;
	return 0;
}

int vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	return vm->ops->irq_line(vm, gsi, level);
}

/* A queued write goes to its handler as the exit would have, but is not
 * counted in --stats' exits_by_device: it was no exit. */
static void coalesced_replay(struct vm *vm, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus_find(&vm->mmio, addr, len);
	uint8_t buf[8];
	if (!r || len > sizeof(buf))
		return;
	memcpy(buf, data, len);
	r->handler(r->opaque, addr - r->base, buf, len, true);
}

void vm_coalesced_flush(struct vm *vm)
{
	if (vm->ops && vm->ops->coalesced_flush)
		vm->ops->coalesced_flush(vm, coalesced_replay);
}

void vm_milestone(struct vm *vm, enum vm_milestone m)
{
	uint64_t expected = 0;
	uint64_t now = clock_now_ns() - vm->start_ns;
	if (now == 0)
		now = 1;
	atomic_compare_exchange_strong(&vm->milestones[m], &expected, now);
}

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io", [KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown", [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr", [KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_X86_RDMSR] = "rdmsr", [KVM_EXIT_X86_WRMSR] = "wrmsr",
};

static const char *const milestone_names[MILESTONE_COUNT] = {
	[MILESTONE_FIRST_OUTPUT] = "first_output_ms",
	[MILESTONE_INIT] = "init_ms",
	[MILESTONE_READY] = "ready_ms",
};

/* A "Name:   N kB" line of /proc/self/status, in KiB (0 if absent). */
static uint64_t proc_status_kib(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	char line[256];
	uint64_t v = 0;
	size_t len = strlen(name);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			v = strtoull(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* What minivmm itself holds in host memory, beside the guest's RAM: RSS
 * (now, at the stop, and its peak) less the guest pages the host backs.
 * Guest RAM only grows during a run (no balloon), so peak - guest RAM is
 * at most the VMM's largest footprint and at least its footprint at the
 * peak. */
static json_t *host_memory_stats(struct vm *vm)
{
	uint64_t rss = proc_status_kib("VmRSS"), hwm = proc_status_kib("VmHWM");
	uint64_t anon = proc_status_kib("RssAnon"), file = proc_status_kib("RssFile");
	uint64_t guest = gmem_resident_bytes(&vm->mem) / 1024;
	json_t *o = json_object();
	json_object_set_new(o, "rss_kib", json_integer((json_int_t)rss));
	json_object_set_new(o, "rss_peak_kib", json_integer((json_int_t)hwm));
	/* Pages of minivmm's binary and shared libraries (libcurl, libcrypto,
	 * ...): shared with every other process that maps them. */
	json_object_set_new(o, "rss_file_kib", json_integer((json_int_t)file));
	/* The VMM's private memory: anonymous pages less the guest's. */
	json_object_set_new(o, "vmm_private_kib",
			    json_integer((json_int_t)(anon > guest ? anon - guest : 0)));
	json_object_set_new(o, "guest_resident_kib", json_integer((json_int_t)guest));
	json_object_set_new(o, "vmm_kib", json_integer((json_int_t)(rss > guest ? rss - guest : 0)));
	json_object_set_new(o, "vmm_peak_kib",
			    json_integer((json_int_t)(hwm > guest ? hwm - guest : 0)));
	return o;
}

int vm_write_stats(struct vm *vm, const char *path, uint64_t wall_ns)
{
	json_t *root = json_object();
	json_t *exits = json_object();
	uint64_t total = 0;
	for (int i = 0; i < VM_EXIT_REASONS; i++) {
		uint64_t n = atomic_load(&vm->exits[i]);
		if (!n)
			continue;
		total += n;
		char name[32];
		const char *nm = (size_t)i < sizeof(exit_names) / sizeof(exit_names[0]) &&
					 exit_names[i] ? exit_names[i] : NULL;
		if (!nm) {
			snprintf(name, sizeof(name), "reason_%d", i);
			nm = name;
		}
		json_object_set_new(exits, nm, json_integer((json_int_t)n));
	}
	json_object_set_new(root, "exits", exits);
	/* Exits by the device that served them: where the time went. */
	json_t *by_dev = json_object();
	struct bus *buses[] = {&vm->pio, &vm->mmio};
	for (int b = 0; b < 2; b++) {
		for (int i = 0; i < buses[b]->n; i++) {
			const struct bus_range *r = &buses[b]->ranges[i];
			uint64_t n = atomic_load(&r->accesses);
			json_t *old = json_object_get(by_dev, r->owner);
			uint64_t prev = old ? (uint64_t)json_integer_value(old) : 0;
			json_object_set_new(by_dev, r->owner, json_integer((json_int_t)(prev + n)));
		}
		char key[32];
		snprintf(key, sizeof(key), "unowned_%s", buses[b]->name);
		json_object_set_new(by_dev, key,
				    json_integer((json_int_t)atomic_load(&buses[b]->unowned)));
	}
	json_object_set_new(root, "exits_by_device", by_dev);
	json_object_set_new(root, "exits_total", json_integer((json_int_t)total));
	json_object_set_new(root, "wall_ms", json_real((double)wall_ns / 1e6));
	json_object_set_new(root, "exit_status", json_integer(vm->exit_status));
	json_object_set_new(root, "stop_reason", json_string(vm->stop_reason));
	json_object_set_new(root, "vcpus", json_integer(vm->n_vcpus));
	json_object_set_new(root, "memory_bytes", json_integer((json_int_t)vm->mem.ram_size));
	json_object_set_new(root, "boot_format", json_string(vm->boot.format ? vm->boot.format : ""));
	json_t *ms = json_object();
	for (int i = 0; i < MILESTONE_COUNT; i++) {
		uint64_t v = atomic_load(&vm->milestones[i]);
		json_object_set_new(ms, milestone_names[i], v ? json_real((double)v / 1e6) : json_null());
	}
	json_object_set_new(root, "milestones", ms);
	json_object_set_new(root, "host_memory", host_memory_stats(vm));
	stats_fill_all(root);
	int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (rc < 0) {
		log_error("cannot write stats to %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
