/*
 * libFuzzer target: split virtqueues (devices/virtio/virtqueue.c) and
 * virtio-blk request execution (devices/virtio/blk_req.c) driven by a
 * hostile guest. The input is guest RAM: its first bytes choose the queue
 * setup, the rest is copied over the descriptor table, the rings and the
 * buffers. The target pops every chain it is offered, runs it as a block
 * request against a 1 MiB memfd, pushes and notifies, and aborts if any
 * chain the queue accepted breaks the contract of virtqueue.h.
 *
 * Input: byte 0 flags (bit 0 indirect, bit 1 event idx, bit 2 read-only
 * disk), byte 1 log2 of the queue size, then guest RAM from 0x1000 on:
 * the available ring first (so that short inputs matter), the descriptor
 * table right after it (16-aligned), then anything the descriptors point
 * at. The used ring is at 1 MiB, written by the device only.
 */
#include "devices/virtio/blk_req.h"
#include "devices/virtio/virtqueue.h"
#include "lib/log.h"
#include "vmm/memory.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_RAM (2ULL << 20)
#define FUZZ_INPUT 0x1000ULL
#define FUZZ_USED 0x100000ULL
#define FUZZ_DISK (1ULL << 20)
#define FUZZ_MAX_POPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct blk_backend disk;
static struct virtq_chain chain;
static unsigned irqs, errors;

static void on_irq(void *opaque, struct virtq *vq) { (void)opaque, (void)vq; irqs++; }
static void on_error(void *opaque, struct virtq *vq, const char *why)
{
	(void)opaque, (void)vq, (void)why;
	errors++;
}

static void setup(void)
{
	log_set_quiet(1);
	if (gmem_init(&mem, FUZZ_RAM) < 0)
		abort();
	disk.fd = memfd_create("fuzz-disk", 0);
	if (disk.fd < 0 || ftruncate(disk.fd, FUZZ_DISK) < 0)
		abort();
	disk.capacity = FUZZ_DISK / VIRTIO_BLK_SECTOR;
	memcpy(disk.id, "fuzz-disk", 9);
}

/* Every iovec the queue hands out lies inside guest RAM. */
static bool in_ram(const void *p, size_t len)
{
	const uint8_t *b = p, *lo = mem.regions[0].host;
	return b >= lo && len <= mem.regions[0].size && (size_t)(b - lo) <= mem.regions[0].size - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mem.base)
		setup();
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	unsigned shift = data[1] % 11; /* queue sizes 1 .. 1024 */
	uint64_t features = ((flags & 1) ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0) |
			    ((flags & 2) ? 1ULL << VIRTIO_F_EVENT_IDX : 0);
	disk.ro = flags & 4;

	/* Every run starts from zeroed RAM and an empty disk, so that a
	 * saved input replays the same way. */
	memset(gmem_ptr(&mem, 0, FUZZ_RAM), 0, FUZZ_RAM);
	if (ftruncate(disk.fd, 0) < 0 || ftruncate(disk.fd, FUZZ_DISK) < 0)
		abort();
	size_t n = size - 2;
	if (n > FUZZ_USED - FUZZ_INPUT)
		n = FUZZ_USED - FUZZ_INPUT;
	memcpy(gmem_ptr(&mem, FUZZ_INPUT, n), data + 2, n);

	struct virtq vq;
	virtq_init(&vq, &mem, 0, VIRTQ_MAX_SIZE, on_irq, on_error, NULL);
	vq.num = (uint16_t)(1u << shift);
	vq.avail_gpa = FUZZ_INPUT;
	vq.desc_gpa = (FUZZ_INPUT + 6 + 2ULL * vq.num + 15) & ~15ULL;
	vq.used_gpa = FUZZ_USED;
	if (virtq_enable(&vq, features) < 0)
		abort(); /* the layout above is always valid */
	errors = 0;
	for (int i = 0; i < FUZZ_MAX_POPS; i++) {
		int rc = virtq_pop(&vq, &chain);
		if (rc <= 0)
			break;
		if ((unsigned)chain.n_rd + chain.n_wr > VIRTQ_CHAIN_MAX || chain.head >= vq.num ||
		    chain.rd_len + chain.wr_len > (1ULL << 32))
			abort();
		uint64_t rd = 0, wr = 0;
		for (unsigned k = 0; k < (unsigned)chain.n_rd + chain.n_wr; k++) {
			if (!in_ram(chain.iov[k].iov_base, chain.iov[k].iov_len))
				abort();
			*(k < chain.n_rd ? &rd : &wr) += chain.iov[k].iov_len;
		}
		if (rd != chain.rd_len || wr != chain.wr_len)
			abort();
		uint32_t len = blk_handle_request(&disk, &chain);
		if (len > chain.wr_len)
			abort();
		virtq_push(&vq, &chain, len);
		virtq_notify(&vq);
	}
	if (errors > 1)
		abort(); /* the error callback fires once per breakage */
	virtq_destroy(&vq);
	return 0;
}
