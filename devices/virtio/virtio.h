/*
 * The virtio device model: what a virtio device (blk, fs, ...) gives the
 * transport and what it gets back. Transport: virtio-mmio version 2
 * (virtio 1.2 section 4.2), modern only (VIRTIO_F_VERSION_1), found by the
 * stock kernel through the ACPI DSDT (HID LNRO0005). docs/virtio.md.
 *
 * A device is one file. Its DEVICE_REGISTER'd create() reads its options
 * and calls virtio_dev_create() once per instance with a const ops table
 * (then device_add()s the instance, devices/device.h):
 *
 *   static const struct virtio_dev_ops blk_ops = {
 *       .name = "virtio-blk", .device_id = VIRTIO_ID_BLOCK,
 *       .features = 1ULL << VIRTIO_BLK_F_FLUSH, .config_size = sizeof(cfg),
 *       .num_queues = 1, .queue_max_size = 256,
 *       .handle_queue = blk_handle_queue, .reset = blk_reset,
 *   };
 *   dev = virtio_dev_create(vm, &blk_ops, blk, &blk->config);
 *
 * The transport claims an MMIO window and an interrupt line, adds the ACPI
 * entry, wires each queue's QueueNotify write to an ioeventfd and the
 * interrupt to an irqfd through vm->ops (no notification or interrupt
 * passes through the vCPU loop), and runs one I/O thread per device that
 * waits (epoll) on the queues' eventfds.
 *
 * Threading contract:
 *  - virtio_dev_create / virtio_dev_stop / virtio_dev_destroy: the main
 *    thread, from the device's create() / stop() / destroy().
 *  - handle_queue(dev, vq): the device's I/O thread, one call at a time
 *    for the whole device. It should pop until virtq_pop returns <= 0,
 *    push each chain and call virtq_notify. It may instead hand chains to
 *    worker threads of its own: virtq_push and virtq_notify are
 *    thread-safe and chains may complete in any order. Several workers
 *    may pop from the same queue too (each virtq call takes the queue
 *    lock), though one popper per queue is simpler.
 *  - config_write, activate, reset: a vCPU thread (register writes), with
 *    the device lock held, so never while handle_queue runs. reset must
 *    forget requests in flight; chains popped before the reset are dropped
 *    by virtq_push, so a device whose workers still hold chains may let
 *    them finish (guest RAM stays mapped for the VM's lifetime).
 *  - The device's config struct: copied into the register page at create
 *    and after each config_write; the device does not change it otherwise
 *    (ConfigGeneration stays 0).
 *  - Interrupts are raised by whichever thread calls virtq_notify (the I/O
 *    thread, or a device's own workers) or virtio_dev_needs_reset.
 */
#ifndef MINIVMM_VIRTIO_H
#define MINIVMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtqueue.h"

struct vm;
struct virtio_dev;

/* Device IDs (5 "Device Types"). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_FS 26

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Largest config space a device may declare (4.2.2: config starts at
 * 0x100 of the register window; minivmm's window is one page). */
#define VIRTIO_CONFIG_MAX 0x400

#define VIRTIO_MAX_QUEUES 16

struct virtio_dev_ops {
	const char *name;        /* "virtio-blk": logs, stats, thread name */
	uint32_t device_id;      /* VIRTIO_ID_* */
	/* Device-specific feature bits offered (bits 0-23 and above 40). The
	 * transport adds VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC and
	 * VIRTIO_F_EVENT_IDX itself. */
	uint64_t features;
	uint32_t config_size;    /* bytes of the config struct, <= VIRTIO_CONFIG_MAX */
	uint16_t num_queues;     /* 1..VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size; /* QueueNumMax: power of 2, <= VIRTQ_MAX_SIZE */

	/* Queue vq (index vq->index) was notified: I/O thread. Required. */
	void (*handle_queue)(struct virtio_dev *dev, struct virtq *vq);
	/* The driver wrote len bytes at offset of the config space; the
	 * transport has already checked the range and copied the bytes into
	 * the config struct. Optional: without it config writes are ignored
	 * (and the struct is left unchanged). vCPU thread. */
	void (*config_write)(struct virtio_dev *dev, uint32_t offset, uint32_t len);
	/* The driver set DRIVER_OK: the features are final. Optional; vCPU
	 * thread. */
	void (*activate)(struct virtio_dev *dev);
	/* The driver wrote 0 to Status: back to the initial state. Optional;
	 * vCPU thread. Queues are reset by the transport after this returns. */
	void (*reset)(struct virtio_dev *dev);
};

/* Create and wire one device instance. opaque is the device's own state
 * (virtio_dev_opaque); config points at its config struct of
 * ops->config_size bytes, little-endian, which must outlive the device.
 * Returns NULL after printing why. Call only from a device's create(). */
struct virtio_dev *virtio_dev_create(struct vm *vm, const struct virtio_dev_ops *ops,
				     void *opaque, void *config);
/* Stop the I/O thread: handle_queue is not called again. The counters
 * (--stats) stay readable and virtq_push/virtq_notify still work, so
 * workers may finish after it. From the device's stop(); idempotent. */
void virtio_dev_stop(struct virtio_dev *dev);
/* Stop if needed, undo the wiring, free everything. From the device's
 * destroy() (after --stats) or a failed create(); NULL is a no-op. */
void virtio_dev_destroy(struct virtio_dev *dev);

void *virtio_dev_opaque(const struct virtio_dev *dev);
/* Queue index of dev (NULL if out of range): for a device whose own
 * threads fill a queue without a notification (virtio-net's receive path). */
struct virtq *virtio_dev_queue(struct virtio_dev *dev, uint16_t index);
/* The features the driver acknowledged (valid from activate on). */
uint64_t virtio_dev_features(const struct virtio_dev *dev);
/* Something went wrong that only a reset cures (2.1.2): sets
 * DEVICE_NEEDS_RESET and interrupts. Any thread. */
void virtio_dev_needs_reset(struct virtio_dev *dev, const char *why);

#endif
