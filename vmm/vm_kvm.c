/*
 * struct vm_ops over KVM (vmm/vm.h): the ioctls devices need, in one
 * place, so that devices/ holds no ioctl and can be tested without
 * /dev/kvm. api.rst sections: KVM_IRQFD 4.75, KVM_IOEVENTFD 4.59,
 * KVM_IRQ_LINE 4.25, KVM_SET_USER_MEMORY_REGION 4.35 (KVM_MEM_READONLY),
 * KVM_REGISTER_COALESCED_MMIO 4.116.
 */
#include "vmm/vm.h"
#include "lib/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int kvm_irqfd(struct vm *vm, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd r = {.fd = (uint32_t)fd, .gsi = gsi,
			      .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
	return ioctl(vm->vm_fd, KVM_IRQFD, &r) < 0 ? -1 : 0;
}

static int kvm_ioeventfd(struct vm *vm, int fd, uint64_t addr, uint32_t len,
			 uint64_t datamatch, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch, .addr = addr, .len = len, .fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -1 : 0;
}

static int kvm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

static int kvm_map_readonly(struct vm *vm, uint64_t gpa, void *host, uint64_t size)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return -1;
	struct kvm_userspace_memory_region r = {
		.slot = vm->next_slot,
		.flags = KVM_MEM_READONLY,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -1;
	return (int)vm->next_slot++;
}

static void kvm_unmap_readonly(struct vm *vm, int slot, uint64_t gpa)
{
	/* Size 0 deletes the slot (api.rst 4.35). */
	struct kvm_userspace_memory_region r = {.slot = (uint32_t)slot, .guest_phys_addr = gpa};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		log_debug("delete memory slot %d: %s", slot, strerror(errno));
}

/* The ring is one per VM, at the page offset KVM_CHECK_EXTENSION returns,
 * in every vCPU's run mapping. */
static int kvm_coalesce_mmio(struct vm *vm, uint64_t addr, uint32_t len, bool assign)
{
	struct kvm_coalesced_mmio_zone z = {.addr = addr, .size = len};
	if (!assign)
		return ioctl(vm->vm_fd, KVM_UNREGISTER_COALESCED_MMIO, &z) < 0 ? -1 : 0;
	int off = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	if (off <= 0 || !vm->n_vcpus || !vm->vcpus)
		return -1;
	if (ioctl(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) < 0)
		return -1;
	pthread_mutex_lock(&vm->coalesced_lock);
	if (!vm->coalesced_ring) {
		long pg = sysconf(_SC_PAGESIZE);
		vm->coalesced_max = (uint32_t)((pg - sizeof(struct kvm_coalesced_mmio_ring)) /
					       sizeof(struct kvm_coalesced_mmio));
		vm->coalesced_ring = (uint8_t *)vm->vcpus[0].run + (long)off * pg;
	}
	pthread_mutex_unlock(&vm->coalesced_lock);
	return 0;
}

static void kvm_coalesced_flush(struct vm *vm,
				void (*replay)(struct vm *vm, uint64_t addr, const uint8_t *data,
					       uint32_t len))
{
	pthread_mutex_lock(&vm->coalesced_lock);
	struct kvm_coalesced_mmio_ring *r = vm->coalesced_ring;
	if (!r) {
		pthread_mutex_unlock(&vm->coalesced_lock);
		return;
	}
	uint32_t first = __atomic_load_n(&r->first, __ATOMIC_RELAXED);
	uint32_t last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
	while (first != last) {
		if (first >= vm->coalesced_max)
			break; /* the kernel's ring is corrupt: leave it */
		struct kvm_coalesced_mmio *e = &r->coalesced_mmio[first];
		if (e->len <= sizeof(e->data))
			replay(vm, e->phys_addr, e->data, e->len);
		first = (first + 1) % vm->coalesced_max;
		__atomic_store_n(&r->first, first, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->coalesced_lock);
}

const struct vm_ops vm_kvm_ops = {
	.irqfd = kvm_irqfd,
	.ioeventfd = kvm_ioeventfd,
	.irq_line = kvm_irq_line,
	.map_readonly = kvm_map_readonly,
	.unmap_readonly = kvm_unmap_readonly,
	.coalesce_mmio = kvm_coalesce_mmio,
	.coalesced_flush = kvm_coalesced_flush,
};
