#include "vmm/crash.h"
#include "lib/clock.h"
#include "vmm/pagewalk.h"

#include <inttypes.h>
#include <string.h>

/* Intel SDM vol. 3A, 2.5 (CR0, CR4), 2.2.1 (EFER), 2.3 (RFLAGS). */
#define CR0_PE (1ULL << 0)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_VM (1ULL << 17)
/* The state after RESET/INIT (SDM vol. 3A, table 9-1). */
#define RESET_RIP 0xfff0
#define RESET_CS 0xf000

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
};

const char *crash_exit_name(uint32_t reason, char *buf, size_t len)
{
	if (reason == CRASH_REASON_KICK)
		return "intr (KVM_RUN interrupted)";
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	snprintf(buf, len, "exit %" PRIu32, reason);
	return buf;
}

bool crash_is_reset_state(const struct kvm_regs *r, const struct kvm_sregs *s)
{
	return r->rip == RESET_RIP && s->cs.selector == RESET_CS;
}

const char *crash_cpu_mode(const struct kvm_sregs *s, uint64_t rflags, char *buf, size_t len)
{
	const char *mode;
	if (!(s->cr0 & CR0_PE))
		mode = "real mode";
	else if (s->efer & EFER_LMA)
		mode = s->cs.l ? "64-bit mode" : s->cs.db ? "compatibility mode (32-bit code)"
							  : "compatibility mode (16-bit code)";
	else if (rflags & RFLAGS_VM)
		mode = "virtual-8086 mode";
	else
		mode = s->cs.db ? "32-bit protected mode" : "16-bit protected mode";
	const char *paging = "paging off";
	if (s->cr0 & CR0_PG)
		paging = (s->efer & EFER_LMA) ? ((s->cr4 & CR4_LA57) ? "5-level paging" : "4-level paging")
		       : (s->cr4 & CR4_PAE) ? "PAE paging" : "32-bit paging";
	snprintf(buf, len, "%s, %s", mode, paging);
	return buf;
}

void crash_format_regs(FILE *f, const struct kvm_regs *r, const struct kvm_sregs *s)
{
	fprintf(f,
		"  rip %016llx rsp %016llx rflags %016llx\n"
		"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"  rsi %016llx rdi %016llx rbp %016llx\n"
		"  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		"  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n",
		r->rip, r->rsp, r->rflags, r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp,
		r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15);
	if (!s) {
		fprintf(f, "  (no control or segment registers)\n");
		return;
	}
	char mode[96];
	fprintf(f,
		"  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %016llx\n"
		"  cs %04x base %llx l %d db %d  ss %04x  ds %04x\n"
		"  gdt %llx/%x idt %llx/%x\n"
		"  mode: %s\n",
		s->cr0, s->cr2, s->cr3, s->cr4, s->efer, s->cs.selector, s->cs.base, s->cs.l,
		s->cs.db, s->ss.selector, s->ds.selector, s->gdt.base, s->gdt.limit, s->idt.base,
		s->idt.limit, crash_cpu_mode(s, r->rflags, mode, sizeof(mode)));
}

void crash_read_code(const struct guest_mem *m, const struct crash_snapshot *s,
		     struct crash_code *c)
{
	memset(c, 0, sizeof(*c));
	if (!s->have_sregs) {
		c->why_not = "no control registers from that exit to find it";
		return;
	}
	const struct kvm_sregs *sr = &s->sregs;
	/* In 64-bit mode CS's base is ignored (SDM vol. 3A, 3.4.4). */
	uint64_t la = s->regs.rip;
	if (!((sr->efer & EFER_LMA) && sr->cs.l))
		la = (sr->cs.base + la) & 0xffffffffULL;
	struct pagewalk_regs pr = {sr->cr0, sr->cr3, sr->cr4, sr->efer};
	uint64_t gpa, left;
	if (pagewalk_translate(m, &pr, la, &gpa, &left) < 0) {
		c->why_not = "rip is not mapped to guest RAM";
		return;
	}
	uint64_t at = left < CRASH_CODE_AT ? left : CRASH_CODE_AT;
	if (gmem_read(m, gpa, c->bytes + CRASH_CODE_BEFORE, at) < 0) {
		c->why_not = "rip is not in guest RAM";
		return;
	}
	c->gpa = gpa;
	c->len = CRASH_CODE_BEFORE + at;
	c->before = CRASH_CODE_BEFORE;
	/* The bytes before rip, when they share a page (one translation). */
	uint64_t bgpa, bleft;
	if (la >= CRASH_CODE_BEFORE &&
	    pagewalk_translate(m, &pr, la - CRASH_CODE_BEFORE, &bgpa, &bleft) == 0 &&
	    bleft >= CRASH_CODE_BEFORE && gmem_read(m, bgpa, c->bytes, CRASH_CODE_BEFORE) == 0)
		return;
	memmove(c->bytes, c->bytes + CRASH_CODE_BEFORE, at);
	c->before = 0;
	c->len = at;
}

static void format_ms(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " ms", ns / CLOCK_NS_PER_MS,
		 (ns % CLOCK_NS_PER_MS) / 1000);
}

static void format_last(FILE *f, const struct crash_report *r)
{
	const struct crash_snapshot *s = r->last;
	if (!s || !s->valid) {
		fprintf(f, "minivmm: vCPU %d: no state from an earlier exit (%s)\n", r->vcpu,
			r->source == CRASH_SOURCE_IOCTL ? "KVM_CAP_SYNC_REGS not in use, and none was read"
							: "the crash was its first exit");
		return;
	}
	char name[32], what[64] = "", when[32], crash_when[32];
	const char *reason = crash_exit_name(s->reason, name, sizeof(name));
	if (s->reason == KVM_EXIT_IO)
		snprintf(what, sizeof(what), ", port 0x%x %s", s->port, s->io_out ? "out" : "in");
	else if (s->reason == KVM_EXIT_MMIO)
		snprintf(what, sizeof(what), ", address 0x%" PRIx64, s->mmio_addr);
	uint64_t ago = r->exit_no > s->exit_no ? r->exit_no - s->exit_no : 0;
	format_ms(when, sizeof(when), s->t_ns);
	format_ms(crash_when, sizeof(crash_when), r->t_ns);
	fprintf(f,
		"minivmm: vCPU %d state at the last exit before the crash (exit reason %s%s; "
		"%" PRIu64 " exit%s before the crash, at %s; the crash at %s):\n",
		r->vcpu, reason, what, ago, ago == 1 ? "" : "s", when, crash_when);
	if (r->source == CRASH_SOURCE_IOCTL)
		fprintf(f, "  (KVM_CAP_SYNC_REGS not in use: the state was read with "
			   "KVM_GET_REGS at most every %d ms, so later exits went unrecorded)\n",
			CRASH_IOCTL_EVERY_MS);
	crash_format_regs(f, &s->regs, s->have_sregs ? &s->sregs : NULL);
	const struct crash_code *c = r->code;
	if (!c)
		return;
	if (c->len == 0) {
		fprintf(f, "  code at rip: none (%s)\n", c->why_not ? c->why_not : "unknown");
		return;
	}
	fprintf(f, "  code at rip (guest-physical %" PRIx64 "):", c->gpa);
	for (size_t i = 0; i < c->len && i < sizeof(c->bytes); i++)
		fprintf(f, i == c->before ? " <%02x>" : " %02x", c->bytes[i]);
	fputc('\n', f);
}

void crash_format_console(FILE *f, const char *lines)
{
	if (!lines || !*lines) {
		fprintf(f, "minivmm: last console output: none\n");
		return;
	}
	fprintf(f, "minivmm: last console output (oldest first, bytes other than "
		   "printable ASCII as \\xNN):\n%s", lines);
}

void crash_format(FILE *f, const struct crash_report *r)
{
	if (r->have_now) {
		fprintf(f, "minivmm: vCPU %d registers at the crash (%s):\n", r->vcpu, r->event);
		crash_format_regs(f, &r->now, &r->now_s);
		if (crash_is_reset_state(&r->now, &r->now_s))
			fprintf(f,
				"minivmm: vCPU %d: these registers are the CPU reset state "
				"(rip 0xfff0, cs 0xf000), not where the guest died%s; see the "
				"state at the last exit below\n",
				r->vcpu, r->shutdown ? ": KVM reset the vCPU at the triple fault" : "");
	} else {
		fprintf(f, "minivmm: vCPU %d registers at the crash (%s): unavailable: %s\n", r->vcpu,
			r->event, strerror(r->now_errno));
	}
	format_last(f, r);
	crash_format_console(f, r->console);
}
