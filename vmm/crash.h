/*
 * The crash dump: what a vCPU was doing when the guest died, printed on
 * stderr when a vCPU stops the run with exit status 6 (vmm/vcpu.c).
 *
 * After a triple fault the registers KVM reports may be the CPU's reset
 * state (rip 0xfff0, cs 0xf000: AMD SVM resets the vCPU at a shutdown),
 * which says nothing about where the guest died. So each vCPU keeps a
 * snapshot of its registers at its last ordinary exit (struct
 * crash_snapshot, filled by vmm/vcpu.c at no ioctl cost where KVM has
 * KVM_CAP_SYNC_REGS), and the dump prints, each labelled: the registers
 * now (and whether they are the reset state), the state at the last exit
 * before the crash with the code bytes at its rip, and the last console
 * lines (vmm/console_ring.h).
 *
 * Formatting is pure (crash_format takes structs, writes to a FILE), so a
 * unit test checks it without KVM.
 */
#ifndef MINIVMM_CRASH_H
#define MINIVMM_CRASH_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/memory.h"

/* Not a KVM exit reason: KVM_RUN returned EINTR (a kick from another
 * thread, or a signal). */
#define CRASH_REASON_KICK 0xffffffffU

/* The state at one exit. */
struct crash_snapshot {
	bool valid;
	uint32_t reason;  /* KVM_EXIT_* or CRASH_REASON_KICK */
	uint16_t port;    /* KVM_EXIT_IO: the port and direction */
	bool io_out;
	uint64_t mmio_addr; /* KVM_EXIT_MMIO: the address */
	uint64_t exit_no; /* the vCPU's exit count at this exit (1 = first) */
	uint64_t t_ns;    /* since the VM started */
	struct kvm_regs regs;
	bool have_sregs;  /* sregs are from the same exit */
	struct kvm_sregs sregs;
};

/* How the snapshots were taken; the dump says so. */
enum crash_source {
	CRASH_SOURCE_SYNC_REGS, /* KVM filled kvm_run->s.regs at every exit */
	CRASH_SOURCE_IOCTL,     /* KVM_GET_REGS/SREGS, at most every CRASH_IOCTL_EVERY_MS */
};
#define CRASH_IOCTL_EVERY_MS 1

/* Bytes of guest code around a rip, Linux "Code:" style. */
#define CRASH_CODE_BEFORE 8
#define CRASH_CODE_AT 16
struct crash_code {
	uint8_t bytes[CRASH_CODE_BEFORE + CRASH_CODE_AT];
	size_t before, len; /* bytes[before] is the byte at rip; len in all */
	uint64_t gpa;       /* guest-physical address of the byte at rip */
	const char *why_not; /* set when there are none */
};

struct crash_report {
	int vcpu;
	const char *event;   /* "triple fault", "KVM internal error", ... */
	bool shutdown;       /* the crash is a KVM_EXIT_SHUTDOWN */
	/* The registers now (after the crash exit); now_errno if unavailable. */
	bool have_now;
	int now_errno;
	struct kvm_regs now;
	struct kvm_sregs now_s;
	uint64_t exit_no;    /* the crash exit's number */
	uint64_t t_ns;
	enum crash_source source;
	const struct crash_snapshot *last; /* NULL or !valid: none */
	const struct crash_code *code;     /* at last->regs.rip, or NULL */
	const char *console; /* console_ring_format text; NULL or "" if none */
};

void crash_format(FILE *f, const struct crash_report *r);

/* The console part alone ("last console output"), also for a hung guest. */
void crash_format_console(FILE *f, const char *lines);

/* The general and segment registers, as "  rip ..." lines. */
void crash_format_regs(FILE *f, const struct kvm_regs *r, const struct kvm_sregs *s);

/* rip 0xfff0 with cs 0xf000: what a CPU holds after RESET or INIT (Intel
 * SDM vol. 3A, table 9-1; AMD APM vol. 2, 14.1.3). */
bool crash_is_reset_state(const struct kvm_regs *r, const struct kvm_sregs *s);

/* "64-bit mode, 4-level paging", "real mode", ... */
const char *crash_cpu_mode(const struct kvm_sregs *s, uint64_t rflags, char *buf, size_t len);

/* "io", "mmio", "shutdown", ...; "exit N" for one without a name. */
const char *crash_exit_name(uint32_t reason, char *buf, size_t len);

/* Read the code around snapshot s's rip from guest RAM, walking the
 * guest's page tables with s's control registers (vmm/pagewalk.h). */
void crash_read_code(const struct guest_mem *m, const struct crash_snapshot *s,
		     struct crash_code *c);

#endif
