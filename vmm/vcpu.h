/*
 * vCPU threads. Each vCPU runs KVM_RUN in its own thread and dispatches
 * port and MMIO exits by address to the bus (vmm/bus.h); any exit it cannot
 * explain stops the VM with a crash dump on stderr (vmm/crash.h).
 *
 * For that dump each vCPU keeps its registers from its last ordinary exit:
 * KVM copies them into the kvm_run page at every exit (KVM_CAP_SYNC_REGS,
 * no system call), and the vCPU copies them aside before handling the
 * exit. Without that capability (or with MINIVMM_SYNC_REGS=0 in the
 * environment) it reads them with KVM_GET_REGS/SREGS at most every
 * CRASH_IOCTL_EVERY_MS. The snapshot is written by the vCPU's
 * thread only and read by a dump on that thread or after it was joined.
 *
 * vcpu_kick interrupts KVM_RUN from another thread (a signal plus
 * kvm_run.immediate_exit); the vCPU then checks whether the VM is stopping
 * and whether it sits halted with interrupts off (a guest that can never
 * wake up, which ends the run instead of hanging it).
 */
#ifndef MINIVMM_VCPU_H
#define MINIVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/crash.h"

struct vm;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	/* Set by the vCPU itself when a kick found it halted with IF=0. */
	atomic_bool dead_halt;
	/* For the crash dump (see above). */
	uint64_t n_exits;         /* KVM_RUN returns, EINTR included */
	uint32_t sync_regs;       /* KVM_SYNC_X86_* asked for; 0: ioctl fallback */
	uint64_t last_ioctl_ns;   /* the fallback's last snapshot */
	struct crash_snapshot last;
};

int vcpu_create(struct vm *vm, struct vcpu *v, int id);
void vcpu_destroy(struct vcpu *v);

/* Put the boot state (vm->boot) in the BSP: segments, paging, registers. */
int vcpu_setup_boot(struct vcpu *v);

int vcpu_start(struct vcpu *v);
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* Print general and segment registers to stderr (a hung guest, or
 * MINIVMM_DUMP_ON_STOP). */
void vcpu_dump(struct vcpu *v);

/* The crash dump (vmm/crash.h) on stderr: the registers now, the state at
 * the last exit before the crash, the last console lines. event names the
 * crash ("triple fault"). On the vCPU's own thread, or after it was joined. */
void vcpu_dump_crash(struct vcpu *v, const char *event, bool shutdown);

/* Install the kick signal handler once per process. */
int vcpu_signals_init(void);

#endif
