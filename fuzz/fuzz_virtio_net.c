/*
 * libFuzzer target: virtio-net's data path (devices/virtio/net_queues.c)
 * driven by a hostile guest. The input is guest RAM, as in fuzz_virtq.c;
 * the transmit and the receive queue both read the same available ring and
 * descriptor table (a guest may do that too) and write separate used
 * rings. The target transmits every chain offered, then receives frames of
 * sizes the input chooses into whatever chains are left, and aborts if a
 * frame handed to the backend is too long, if the counters disagree, or
 * (through the sanitizers) on any access outside guest RAM.
 *
 * Input: byte 0 flags (bit 0 indirect, bit 1 event idx, bit 2 mergeable
 * receive buffers), byte 1 log2 of the queue size, bytes 2-5 two frame
 * sizes (le16), then guest RAM from 0x1000 on: the available ring, the
 * descriptor table right after it (16-aligned), then the buffers. The
 * used rings are at 1 MiB and 1.5 MiB, written by the device only.
 */
#include "devices/virtio/net_queues.h"
#include "lib/log.h"
#include "vmm/memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_RAM (2ULL << 20)
#define FUZZ_INPUT 0x1000ULL
#define FUZZ_RX_USED 0x100000ULL
#define FUZZ_TX_USED 0x180000ULL
#define FUZZ_HEAD 6
#define FUZZ_FRAMES 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct net_queues q;
static uint8_t frame[NET_MAX_FRAME];
static uint64_t sent;

static void on_irq(void *opaque, struct virtq *vq) { (void)opaque, (void)vq; }
static void on_error(void *opaque, struct virtq *vq, const char *why)
{
	(void)opaque, (void)vq, (void)why;
}

static int on_send(void *opaque, const void *f, size_t len)
{
	(void)opaque, (void)f;
	if (len > NET_MAX_FRAME)
		abort();
	sent++;
	return 0;
}

static void setup(void)
{
	log_set_quiet(1);
	if (gmem_init(&mem, FUZZ_RAM) < 0)
		abort();
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
}

static void queue(struct virtq *vq, uint16_t index, uint16_t num, uint64_t used,
		  uint64_t features)
{
	virtq_init(vq, &mem, index, VIRTQ_MAX_SIZE, on_irq, on_error, NULL);
	vq->num = num;
	vq->avail_gpa = FUZZ_INPUT;
	vq->desc_gpa = (FUZZ_INPUT + 6 + 2ULL * num + 15) & ~15ULL;
	vq->used_gpa = used;
	if (virtq_enable(vq, features) < 0)
		abort(); /* the layout above is always valid */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mem.base)
		setup();
	if (size < FUZZ_HEAD)
		return 0;
	uint8_t flags = data[0];
	uint16_t num = (uint16_t)(1u << (data[1] % 11)); /* 1 .. 1024 */
	size_t sizes[2] = {(size_t)(data[2] | data[3] << 8), (size_t)(data[4] | data[5] << 8)};
	uint64_t features = ((flags & 1) ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0) |
			    ((flags & 2) ? 1ULL << VIRTIO_F_EVENT_IDX : 0);

	memset(gmem_ptr(&mem, 0, FUZZ_RAM), 0, FUZZ_RAM);
	size_t n = size - FUZZ_HEAD;
	if (n > FUZZ_RX_USED - FUZZ_INPUT)
		n = FUZZ_RX_USED - FUZZ_INPUT;
	memcpy(gmem_ptr(&mem, FUZZ_INPUT, n), data + FUZZ_HEAD, n);

	struct virtq rxq, txq;
	queue(&rxq, 0, num, FUZZ_RX_USED, features);
	queue(&txq, 1, num, FUZZ_TX_USED, features);
	if (net_queues_init(&q, on_send, NULL) < 0)
		abort();
	net_queues_activate(&q, flags & 4, num);
	sent = 0;

	net_tx(&q, &txq);
	if (sent != q.tx_packets)
		abort();
	for (int i = 0; i < FUZZ_FRAMES; i++)
		net_rx_frame(&q, &rxq, frame, sizes[i % 2] % (NET_MAX_FRAME + 2));
	net_rx_drain(&q, &rxq);
	/* Every frame is delivered, waiting, or dropped, never lost. */
	if (q.rx_packets + q.rx_dropped + q.bl_frames != FUZZ_FRAMES)
		abort();
	net_queues_reset(&q);
	net_queues_destroy(&q);
	virtq_destroy(&rxq);
	virtq_destroy(&txq);
	return 0;
}
