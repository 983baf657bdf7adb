#include "vmm/vcpu.h"
#include "vmm/layout.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "vmm/console.h"
#include "vmm/console_ring.h"
#include "vmm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The kick signal. Its handler only makes the next KVM_RUN return at once. */
#define VCPU_KICK_SIGNAL SIGUSR1

static __thread struct kvm_run *current_run;

static void kick_handler(int sig)
{
	(void)sig;
	if (current_run)
		current_run->immediate_exit = 1;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		log_error("sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* CPUID leaves whose contents depend on the vCPU or on --cpus (Intel SDM
 * vol. 2A "CPUID"; AMD APM vol. 3, appendix E). Each vCPU is one core of a
 * single package, one thread per core, APIC id = vCPU index (the MADT says
 * the same, vmm/acpi.c). */
#define CPUID_VENDOR 0x0
#define CPUID_FEATURES 0x1
#define CPUID_CACHE_PARAMS 0x4
#define CPUID_EXT_TOPOLOGY 0xb
#define CPUID_V2_EXT_TOPOLOGY 0x1f
#define CPUID_AMD_SIZES 0x80000008
#define CPUID_AMD_TOPOLOGY 0x8000001e
#define CPUID_FEAT_ECX_HYPERVISOR (1U << 31)
/* ECX bit 24: the local APIC's TSC-deadline timer mode (SDM vol. 3A,
 * "TSC-Deadline Mode"). KVM emulates it in its in-kernel APIC,
 * which minivmm always uses, but kernels before late 2024 leave it out of
 * KVM_GET_SUPPORTED_CPUID and expect the VMM to add it when
 * KVM_CAP_TSC_DEADLINE_TIMER says so, as QEMU does. */
#define CPUID_FEAT_ECX_TSC_DEADLINE (1U << 24)
#define CPUID_FEAT_EDX_HTT (1U << 28)
#define CPUID_CACHE_TYPE_MASK 0x1f
#define CPUID_CACHE_LEVEL(eax) (((eax) >> 5) & 0x7)
#define CPUID_TOPO_LEVEL_SMT 1
#define CPUID_TOPO_LEVEL_CORE 2
#define CPUID_TOPO_LEVEL_SHIFT 8
#define VCPU_MAX_CPUID_ENTRIES 256

/* Bits of the APIC id that number the cores: ceil(log2(n)). */
static uint32_t core_id_bits(int n)
{
	uint32_t bits = 0;
	while ((1 << bits) < n)
		bits++;
	return bits;
}

static void set_topology_leaf(struct kvm_cpuid_entry2 *e, uint32_t index, uint32_t eax,
			      uint32_t ebx, uint32_t level_type, uint32_t apic_id)
{
	*e = (struct kvm_cpuid_entry2){
		.function = CPUID_EXT_TOPOLOGY,
		.index = index,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = eax,
		.ebx = ebx,
		.ecx = (level_type << CPUID_TOPO_LEVEL_SHIFT) | index,
		.edx = apic_id,
	};
}

static int setup_cpuid(struct vcpu *v)
{
	struct vm *vm = v->vm;
	int nent = VCPU_MAX_CPUID_ENTRIES;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + (size_t)(nent + 3) * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -1;
	cpuid->nent = (uint32_t)nent;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(cpuid);
		return -1;
	}
	bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	uint32_t id = (uint32_t)v->id, n = (uint32_t)vm->n_vcpus;
	uint32_t bits = core_id_bits(vm->n_vcpus);
	uint32_t max_basic = 0;
	uint32_t out = 0;
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 e = cpuid->entries[i];
		switch (e.function) {
		case CPUID_VENDOR:
			max_basic = e.eax;
			break;
		case CPUID_FEATURES:
			/* EBX[31:24] initial APIC id, EBX[23:16] addressable ids
			 * in the package; HTT says that field is valid. */
			e.ebx = (e.ebx & 0x0000ffffU) | (id << 24) | ((1U << bits) << 16);
			if (n > 1)
				e.edx |= CPUID_FEAT_EDX_HTT;
			e.ecx |= CPUID_FEAT_ECX_HYPERVISOR;
			if (tsc_deadline)
				e.ecx |= CPUID_FEAT_ECX_TSC_DEADLINE;
			break;
		case CPUID_CACHE_PARAMS:
			if ((e.eax & CPUID_CACHE_TYPE_MASK) == 0)
				break;
			/* EAX[31:26] core ids - 1; EAX[25:14] threads sharing the
			 * cache - 1: L1 and L2 are per core, L3 is shared. */
			e.eax &= 0x00003fffU;
			e.eax |= ((1U << bits) - 1) << 26;
			if (CPUID_CACHE_LEVEL(e.eax) >= 3)
				e.eax |= ((1U << bits) - 1) << 14;
			break;
		case CPUID_EXT_TOPOLOGY:
		case CPUID_V2_EXT_TOPOLOGY:
			continue; /* replaced below; the host's shape means nothing here */
		case CPUID_AMD_SIZES:
			/* ECX[15:12] APIC id bits for cores, ECX[7:0] cores - 1. */
			e.ecx = (e.ecx & ~0xf0ffU) | (bits << 12) | (n - 1);
			break;
		case CPUID_AMD_TOPOLOGY:
			e.eax = id;        /* extended APIC id */
			e.ebx = id & 0xff; /* core id, one thread per core */
			e.ecx = 0;         /* node 0, one node */
			break;
		default:
			break;
		}
		cpuid->entries[out++] = e;
	}
	if (max_basic >= CPUID_EXT_TOPOLOGY) {
		/* Sub-leaf 0: threads (one per core); 1: cores; 2: end of list. */
		set_topology_leaf(&cpuid->entries[out++], 0, 0, 1, CPUID_TOPO_LEVEL_SMT, id);
		set_topology_leaf(&cpuid->entries[out++], 1, bits, n, CPUID_TOPO_LEVEL_CORE, id);
		set_topology_leaf(&cpuid->entries[out++], 2, 0, 0, 0, id);
	}
	cpuid->nent = out;
	int rc = ioctl(v->fd, KVM_SET_CPUID2, cpuid);
	if (rc < 0)
		log_error("KVM_SET_CPUID2: %s", strerror(errno));
	free(cpuid);
	return rc;
}

/* MSRs a firmware would leave set (the list Firecracker uses): syscall
 * entry points cleared, fast string operations on (Intel SDM vol. 4,
 * IA32_MISC_ENABLE bit 0), MTRRs on with write-back as the default type
 * (SDM vol. 3A, 11.11.2.1), so the kernel does not run all RAM uncached. */
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 0x1
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WB 6

static int setup_msrs(struct vcpu *v)
{
	static const struct kvm_msr_entry boot_msrs[] = {
		{.index = MSR_IA32_SYSENTER_CS}, {.index = MSR_IA32_SYSENTER_ESP},
		{.index = MSR_IA32_SYSENTER_EIP}, {.index = MSR_STAR},
		{.index = MSR_CSTAR}, {.index = MSR_KERNEL_GS_BASE},
		{.index = MSR_SYSCALL_MASK}, {.index = MSR_LSTAR},
		{.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING},
		{.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE | MTRR_TYPE_WB},
	};
	const size_t n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	/* struct kvm_msrs ends in a flexible array: header and entries in one
	 * buffer, as KVM_SET_MSRS expects them. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(boot_msrs)];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = (uint32_t)n;
	memcpy(msrs.bytes + sizeof(struct kvm_msrs), boot_msrs, sizeof(boot_msrs));
	int rc = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (rc != (int)n) {
		log_error("KVM_SET_MSRS on vCPU %d: set %d of %zu MSRs (%s)", v->id, rc, n,
			  rc < 0 ? strerror(errno) : "MSR refused");
		return -1;
	}
	return 0;
}

/* Local vector table entries (Intel SDM vol. 3A, 10.5.1): LINT0 takes the
 * 8259's interrupts (ExtINT), LINT1 is the NMI pin, as a PC BIOS leaves
 * them (MP spec 1.4, 5.1 "virtual wire mode"). */
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_DELIVERY_MASK (0x7U << 8)
#define APIC_DELIVERY_NMI (0x4U << 8)
#define APIC_DELIVERY_EXTINT (0x7U << 8)

static void lapic_set_delivery(struct kvm_lapic_state *st, int reg, uint32_t mode)
{
	uint32_t v;
	memcpy(&v, st->regs + reg, 4);
	v = (v & ~APIC_DELIVERY_MASK) | mode;
	memcpy(st->regs + reg, &v, 4);
}

static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state st;
	if (ioctl(v->fd, KVM_GET_LAPIC, &st) < 0) {
		log_error("KVM_GET_LAPIC on vCPU %d: %s", v->id, strerror(errno));
		return -1;
	}
	lapic_set_delivery(&st, APIC_LVT_LINT0, APIC_DELIVERY_EXTINT);
	lapic_set_delivery(&st, APIC_LVT_LINT1, APIC_DELIVERY_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &st) < 0) {
		log_error("KVM_SET_LAPIC on vCPU %d: %s", v->id, strerror(errno));
		return -1;
	}
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *v, int id)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		log_error("KVM_CREATE_VCPU %d: %s", id, strerror(errno));
		return -1;
	}
	v->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		log_error("mmap vCPU %d: %s", id, strerror(errno));
		return -1;
	}
	if (setup_cpuid(v) < 0 || setup_msrs(v) < 0 || setup_lapic(v) < 0)
		return -1;
	/* KVM_CHECK_EXTENSION answers with the KVM_SYNC_X86_* bits it fills
	 * (api.rst, "kvm_valid_regs"); both or the ioctl fallback, which
	 * MINIVMM_SYNC_REGS=0 picks (to test it, or to measure the cost). */
	const char *env = getenv("MINIVMM_SYNC_REGS");
	int sync = 0;
	if (!env || strcmp(env, "0") != 0)
		sync = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	const uint32_t want = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	if (sync > 0 && ((uint32_t)sync & want) == want) {
		v->sync_regs = want;
		v->run->kvm_valid_regs = want;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->vcpu_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

/* GDT entries (Intel SDM vol. 3A, 3.4.5). The 64-bit Linux boot protocol
 * wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18 (boot.rst). */
#define GDT_CODE32 0x00cf9b000000ffffULL /* base 0, 4 GiB, exec/read, D=1 */
#define GDT_CODE64 0x00af9b000000ffffULL /* L=1 */
#define GDT_DATA 0x00cf93000000ffffULL   /* read/write, 4 GiB */
#define GDT_TSS 0x00008b0000000067ULL    /* busy 32/64-bit TSS, limit 0x67 */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

static struct kvm_segment seg_from_gdt(uint64_t desc, uint16_t sel)
{
	struct kvm_segment s = {
		.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24),
		.limit = (uint32_t)((desc & 0xffff) | (((desc >> 48) & 0xf) << 16)),
		.selector = sel,
		.type = (desc >> 40) & 0xf,
		.present = (desc >> 47) & 1,
		.dpl = (desc >> 45) & 3,
		.db = (desc >> 54) & 1,
		.s = (desc >> 44) & 1,
		.l = (desc >> 53) & 1,
		.g = (desc >> 55) & 1,
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

static int write_gdt_and_paging(struct vm *vm, uint64_t gdt_at, bool paging)
{
	uint64_t gdt[6] = {0, GDT_CODE32, GDT_CODE64, GDT_DATA, GDT_TSS, 0};
	if (gmem_write(&vm->mem, gdt_at, gdt, sizeof(gdt)) < 0)
		return -1;
	if (!paging)
		return 0;
	/* Identity-map the low 4 GiB with 2 MiB pages: one PML4 entry, four
	 * PDPT entries, four page directories. */
	uint64_t *pml4 = gmem_ptr(&vm->mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(&vm->mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = gmem_ptr(&vm->mem, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -1;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

int vcpu_setup_boot(struct vcpu *v)
{
	struct vm *vm = v->vm;
	const struct boot_state *b = &vm->boot;
	bool long_mode = b->mode == BOOT_MODE_LONG64;
	uint64_t gdt_at = b->gdt ? b->gdt : LAYOUT_GDT;
	if (write_gdt_and_paging(vm, gdt_at, long_mode) < 0) {
		log_error("guest RAM too small for the boot page tables");
		return -1;
	}
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	struct kvm_segment code = long_mode ? seg_from_gdt(GDT_CODE64, SEL_CODE64)
					    : seg_from_gdt(GDT_CODE32, SEL_CODE32);
	struct kvm_segment data = seg_from_gdt(GDT_DATA, SEL_DATA);
	struct kvm_segment tss = seg_from_gdt(GDT_TSS, SEL_TSS);
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tss;
	sregs.gdt.base = gdt_at;
	sregs.gdt.limit = 6 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_ET;
	if (long_mode) {
		sregs.cr0 |= CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
	} else {
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
		log_error("KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	struct kvm_regs regs = {0};
	regs.rflags = 0x2; /* bit 1 is reserved and reads as one */
	regs.rip = b->rip;
	regs.rsp = b->rsp;
	regs.rsi = b->rsi;
	regs.rdi = b->rdi;
	regs.rax = b->rax;
	regs.rbx = b->rbx;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		log_error("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void vcpu_dump(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(stderr, "minivmm: vCPU %d: registers unavailable: %s\n", v->id, strerror(errno));
		return;
	}
	fprintf(stderr, "minivmm: vCPU %d registers:\n", v->id);
	crash_format_regs(stderr, &r, &s);
	if (crash_is_reset_state(&r, &s))
		fprintf(stderr, "minivmm: vCPU %d: that is the CPU reset state (never started, "
				"or reset)\n", v->id);
}

static uint64_t since_start(const struct vcpu *v, uint64_t now)
{
	return now > v->vm->start_ns ? now - v->vm->start_ns : 0;
}

/* Keep the state of an exit that is not the crash itself. With sync regs
 * this is a copy of what KVM already wrote into the run page (a few
 * hundred bytes, next to an exit's microseconds); without, two ioctls at
 * most every CRASH_IOCTL_EVERY_MS. */
static void note_exit(struct vcpu *v, uint32_t reason)
{
	struct crash_snapshot *s = &v->last;
	uint64_t now = clock_now_ns();
	if (v->sync_regs) {
		s->regs = v->run->s.regs.regs;
		s->sregs = v->run->s.regs.sregs;
		s->have_sregs = true;
	} else {
		if (s->valid && now - v->last_ioctl_ns < CRASH_IOCTL_EVERY_MS * CLOCK_NS_PER_MS)
			return;
		v->last_ioctl_ns = now;
		if (ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0)
			return;
		s->have_sregs = ioctl(v->fd, KVM_GET_SREGS, &s->sregs) == 0;
	}
	s->valid = true;
	s->reason = reason;
	s->exit_no = v->n_exits;
	s->t_ns = since_start(v, now);
	s->port = 0;
	s->io_out = false;
	s->mmio_addr = 0;
	if (reason == KVM_EXIT_IO) {
		s->port = v->run->io.port;
		s->io_out = v->run->io.direction == KVM_EXIT_IO_OUT;
	} else if (reason == KVM_EXIT_MMIO) {
		s->mmio_addr = v->run->mmio.phys_addr;
	}
}

void vcpu_dump_crash(struct vcpu *v, const char *event, bool shutdown)
{
	struct crash_report r = {
		.vcpu = v->id,
		.event = event,
		.shutdown = shutdown,
		.exit_no = v->n_exits,
		.t_ns = since_start(v, clock_now_ns()),
		.source = v->sync_regs ? CRASH_SOURCE_SYNC_REGS : CRASH_SOURCE_IOCTL,
		.last = &v->last,
	};
	r.have_now = ioctl(v->fd, KVM_GET_REGS, &r.now) == 0 &&
		     ioctl(v->fd, KVM_GET_SREGS, &r.now_s) == 0;
	r.now_errno = errno;
	struct crash_code code;
	if (v->last.valid) {
		crash_read_code(&v->vm->mem, &v->last, &code);
		r.code = &code;
	}
	char console[CONSOLE_RING_TEXT];
	/* Two vCPUs crashing at once print one dump after the other. */
	static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&dump_lock);
	console_flush(); /* the guest's lines first, then ours */
	console_last_lines(console, sizeof(console));
	r.console = console;
	crash_format(stderr, &r);
	pthread_mutex_unlock(&dump_lock);
}

#define RFLAGS_IF (1ULL << 9)
#define VCPU_STACK_SIZE (1024 * 1024)

/* Called after a kick: is this vCPU halted with interrupts off, for good? */
static void check_dead_halt(struct vcpu *v)
{
	struct kvm_mp_state mp;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return;
	bool dead = false;
	if (mp.mp_state == KVM_MP_STATE_HALTED) {
		struct kvm_regs r;
		if (ioctl(v->fd, KVM_GET_REGS, &r) == 0 && !(r.rflags & RFLAGS_IF))
			dead = true;
	} else if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED ||
		   mp.mp_state == KVM_MP_STATE_INIT_RECEIVED) {
		/* An AP that was never started can only be woken by another
		 * vCPU; it is dead exactly when all the others are. */
		dead = v->id != 0;
	}
	atomic_store(&v->dead_halt, dead);
}

static bool handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	uint64_t bytes = (uint64_t)size * count;
	/* The kernel chose these, but a bad value must not walk off the page. */
	if (size == 0 || size > 8 || off > (uint64_t)v->vm->vcpu_mmap_size ||
	    bytes > (uint64_t)v->vm->vcpu_mmap_size - off)
		return false;
	uint8_t *data = (uint8_t *)run + off;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < count; i++)
		bus_dispatch(&v->vm->pio, run->io.port, data + (uint64_t)i * size, size, is_write);
	return true;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;
	current_run = run;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!vm_is_stopping(vm)) {
		int rc = ioctl(v->fd, KVM_RUN, 0);
		v->n_exits++;
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				note_exit(v, CRASH_REASON_KICK);
				atomic_fetch_add_explicit(&vm->exits[KVM_EXIT_INTR], 1, memory_order_relaxed);
				if (!vm_is_stopping(vm))
					check_dead_halt(v);
				continue;
			}
			log_error("vCPU %d: KVM_RUN: %s", v->id, strerror(errno));
			vcpu_dump_crash(v, "KVM_RUN failed", false);
			vm_stop(vm, EXIT_GUEST_CRASH, "KVM_RUN failed on vCPU %d", v->id);
			break;
		}
		uint32_t reason = run->exit_reason;
		if (reason < VM_EXIT_REASONS)
			atomic_fetch_add_explicit(&vm->exits[reason], 1, memory_order_relaxed);
		atomic_store(&v->dead_halt, false);
		switch (reason) {
		/* The exits that are not a crash are noted for the crash dump
		 * (note_exit); a crash's own exit never is. */
		case KVM_EXIT_IO:
			if (!handle_io(v)) {
				vcpu_dump_crash(v, "malformed I/O exit", false);
				vm_stop(vm, EXIT_GUEST_CRASH, "malformed I/O exit on vCPU %d", v->id);
				break;
			}
			note_exit(v, reason);
			break;
		case KVM_EXIT_MMIO:
			if (run->mmio.len > sizeof(run->mmio.data)) {
				vcpu_dump_crash(v, "malformed MMIO exit", false);
				vm_stop(vm, EXIT_GUEST_CRASH, "malformed MMIO exit on vCPU %d", v->id);
				break;
			}
			note_exit(v, reason);
			bus_dispatch(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				     run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
			/* Only seen without an in-kernel LAPIC; treat as the end. */
			vm_stop(vm, EXIT_GUEST_HUNG, "vCPU %d halted", v->id);
			break;
		case KVM_EXIT_SHUTDOWN:
			log_error("vCPU %d: triple fault (KVM_EXIT_SHUTDOWN)", v->id);
			vcpu_dump_crash(v, "triple fault", true);
			vm_stop(vm, EXIT_GUEST_CRASH, "triple fault on vCPU %d", v->id);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			log_error("vCPU %d: VM entry failed, hardware reason 0x%llx", v->id,
				  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vcpu_dump_crash(v, "VM entry failed", false);
			vm_stop(vm, EXIT_GUEST_CRASH, "VM entry failed on vCPU %d", v->id);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			log_error("vCPU %d: KVM internal error, suberror %u", v->id,
				  run->internal.suberror);
			vcpu_dump_crash(v, "KVM internal error", false);
			vm_stop(vm, EXIT_GUEST_CRASH, "KVM internal error on vCPU %d", v->id);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			switch (run->system_event.type) {
			case KVM_SYSTEM_EVENT_SHUTDOWN:
				vm_stop(vm, EXIT_OK, "guest powered off");
				break;
			case KVM_SYSTEM_EVENT_RESET:
				vm_stop(vm, EXIT_OK, "guest rebooted");
				break;
			case KVM_SYSTEM_EVENT_CRASH:
				vm_stop(vm, EXIT_GUEST_PANIC, "guest crashed");
				break;
			default:
				vm_stop(vm, EXIT_GUEST_CRASH, "system event %u", run->system_event.type);
			}
			break;
		case KVM_EXIT_INTR:
			note_exit(v, reason);
			break;
		default:
			log_error("vCPU %d: unexpected exit reason %u", v->id, reason);
			vcpu_dump_crash(v, "unexpected exit", false);
			vm_stop(vm, EXIT_GUEST_CRASH, "unexpected exit %u on vCPU %d", reason, v->id);
		}
	}
	current_run = NULL;
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	/* The vCPU thread starts with the kick signal blocked and unblocks it
	 * itself, once current_run is set. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	/* A small stack: the default 8 MiB mapping gets transparent huge
	 * pages on many hosts, megabytes of RSS for a loop that needs little. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
	int rc = pthread_create(&v->thread, &attr, vcpu_thread, v);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("cannot start vCPU thread: %s", strerror(rc));
		return -1;
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
}
