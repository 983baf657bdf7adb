/*
 * virtio-blk (virtio 1.2 section 5.2): `--disk FILE[,ro]`, repeatable; the
 * first is /dev/vda in the guest. Requests run on the device's I/O thread
 * (devices/virtio/blk_req.c does the work, straight between the file and
 * guest RAM); flush is fdatasync. A read-only disk is opened O_RDONLY,
 * advertises VIRTIO_BLK_F_RO and answers writes with VIRTIO_BLK_S_IOERR.
 * The image is locked (flock: shared for ro, exclusive otherwise) so two
 * VMs cannot write one image.
 */
#include "devices/device.h"
#include "devices/virtio/blk_req.h"
#include "devices/virtio/virtio.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* 512: a 1 MiB request of scattered 4 KiB pages (256 segments) fits in
 * one chain, with room to spare. */
#define BLK_QUEUE_SIZE 512
/* 5.2.4: seg_max counts data segments; a chain also holds the header and
 * the status byte and must fit in the queue (2.7.5.3.1). */
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISKS 8

/* 5.2.4 struct virtio_blk_config, up to the write-zeroes fields. */
struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));
_Static_assert(sizeof(struct blk_config) == 60, "virtio_blk_config layout (5.2.4)");

struct blk {
	struct virtio_dev *dev;
	char path[256];
	char stats_key[16];
	struct blk_backend be;
	struct blk_config config;
	struct virtq_chain chain; /* used by the I/O thread only */
};

/* "FILE", "FILE,ro" or "FILE,rw": the part after the first comma is a
 * list of options. */
static int disk_parse(const char *spec, char *path, size_t pathlen, bool *ro,
		      char *err, size_t errlen)
{
	const char *comma = strchr(spec, ',');
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);
	if (n == 0 || n >= pathlen) {
		snprintf(err, errlen, "'%s': expected FILE[,ro]", spec);
		return -1;
	}
	memcpy(path, spec, n);
	path[n] = 0;
	*ro = false;
	while (comma) {
		const char *opt = comma + 1;
		comma = strchr(opt, ',');
		size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
		if (len == 2 && !strncmp(opt, "ro", 2))
			*ro = true;
		else if (len == 2 && !strncmp(opt, "rw", 2))
			*ro = false;
		else {
			snprintf(err, errlen, "'%s': unknown disk option '%.*s' (known: ro, rw)",
				 spec, (int)len, opt);
			return -1;
		}
	}
	return 0;
}

static int validate_disk(const char *v, char *err, size_t errlen)
{
	char path[256];
	bool ro;
	return disk_parse(v, path, sizeof(path), &ro, err, errlen);
}

CLI_OPTION(.command = "run", .name = "disk", .argname = "FILE[,ro]",
	   .help = "virtio-blk disk backed by FILE (repeatable; the first is /dev/vda); "
		   ",ro makes it read-only",
	   .validate = validate_disk)

static void blk_handle_queue(struct virtio_dev *dev, struct virtq *vq)
{
	struct blk *b = virtio_dev_opaque(dev);
	while (virtq_pop(vq, &b->chain) > 0) {
		uint32_t len = blk_handle_request(&b->be, &b->chain);
		virtq_push(vq, &b->chain, len);
		/* Per request, not per batch: the guest can reuse the slot at
		 * once; EVENT_IDX keeps the interrupt count down. */
		virtq_notify(vq);
	}
}

static const struct virtio_dev_ops blk_ops_rw = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		    (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_DISCARD) |
		    (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
	.config_size = sizeof(struct blk_config),
	.num_queues = 1,
	.queue_max_size = BLK_QUEUE_SIZE,
	.handle_queue = blk_handle_queue,
};

static const struct virtio_dev_ops blk_ops_ro = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		    (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_RO),
	.config_size = sizeof(struct blk_config),
	.num_queues = 1,
	.queue_max_size = BLK_QUEUE_SIZE,
	.handle_queue = blk_handle_queue,
};

static void blk_stats(void *opaque, json_t *obj)
{
	struct blk *b = opaque;
	/* Read racily from the I/O thread's counters: figures, not state. */
	json_object_set_new(obj, "file", json_string(b->path));
	json_object_set_new(obj, "read_only", json_boolean(b->be.ro));
	json_object_set_new(obj, "reads", json_integer((json_int_t)b->be.n_read));
	json_object_set_new(obj, "writes", json_integer((json_int_t)b->be.n_write));
	json_object_set_new(obj, "flushes", json_integer((json_int_t)b->be.n_flush));
	json_object_set_new(obj, "other_requests", json_integer((json_int_t)b->be.n_other));
	json_object_set_new(obj, "errors", json_integer((json_int_t)b->be.n_errors));
	json_object_set_new(obj, "bytes_read", json_integer((json_int_t)b->be.bytes_read));
	json_object_set_new(obj, "bytes_written", json_integer((json_int_t)b->be.bytes_written));
}

static int disk_open(struct blk *b, bool ro)
{
	b->be.fd = open(b->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->be.fd < 0) {
		log_error("--disk %s: %s", b->path, strerror(errno));
		return -1;
	}
	if (flock(b->be.fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		log_error("--disk %s: the image is in use by another process (%s)", b->path,
			  strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(b->be.fd, &st) < 0) {
		log_error("--disk %s: %s", b->path, strerror(errno));
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(b->be.fd, BLKGETSIZE64, &size) < 0) {
		log_error("--disk %s: BLKGETSIZE64: %s", b->path, strerror(errno));
		return -1;
	}
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
		log_error("--disk %s: not a regular file or block device", b->path);
		return -1;
	}
	if (size % VIRTIO_BLK_SECTOR)
		log_warn("--disk %s: size is not a multiple of 512; the last %llu bytes are "
			 "not visible", b->path, (unsigned long long)(size % VIRTIO_BLK_SECTOR));
	b->be.capacity = size / VIRTIO_BLK_SECTOR;
	b->be.ro = ro;
	return 0;
}

static void blk_stop(void *instance)
{
	struct blk *b = instance;
	virtio_dev_stop(b->dev);
}

/* After --stats: the figures above are read until then. */
static void blk_destroy(void *instance)
{
	struct blk *b = instance;
	stats_unregister(b);
	virtio_dev_destroy(b->dev);
	if (b->be.fd >= 0)
		close(b->be.fd);
	free(b);
}

static const struct device_ops blk_device_ops;

/* Disk number index (disk0 is /dev/vda) from its --disk spec. */
static int blk_create_one(struct vm *vm, const char *spec, int index)
{
	char err[300];
	bool ro;
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	b->be.fd = -1;
	if (disk_parse(spec, b->path, sizeof(b->path), &ro, err, sizeof(err)) < 0) {
		log_error("--disk %s", err);
		goto fail;
	}
	if (disk_open(b, ro) < 0)
		goto fail;
	/* GET_ID answers the file's name (the guest's /sys/block/vdX/serial). */
	const char *base = strrchr(b->path, '/');
	base = base ? base + 1 : b->path;
	size_t idlen = strlen(base);
	memcpy(b->be.id, base, idlen < sizeof(b->be.id) ? idlen : sizeof(b->be.id));

	struct blk_config *c = &b->config;
	c->capacity = b->be.capacity;
	c->seg_max = BLK_SEG_MAX;
	c->blk_size = VIRTIO_BLK_SECTOR;
	c->num_queues = 1;
	c->max_discard_sectors = UINT32_MAX;
	c->max_discard_seg = BLK_MAX_DISCARD_SEG;
	c->discard_sector_alignment = 4096 / VIRTIO_BLK_SECTOR; /* a host page */
	c->max_write_zeroes_sectors = UINT32_MAX;
	c->max_write_zeroes_seg = BLK_MAX_DISCARD_SEG;
	c->write_zeroes_may_unmap = 1;
	b->dev = virtio_dev_create(vm, ro ? &blk_ops_ro : &blk_ops_rw, b, &b->config);
	if (!b->dev || device_add(vm, &blk_device_ops, b) < 0)
		goto fail;
	snprintf(b->stats_key, sizeof(b->stats_key), "disk%d", index);
	stats_register(b->stats_key, blk_stats, b);
	return 0;
fail:
	blk_destroy(b);
	return -1;
}

static int blk_create(struct vm *vm)
{
	const char *specs[BLK_MAX_DISKS + 1];
	size_t n = config_get_all(vm->cfg, "disk", specs, BLK_MAX_DISKS + 1);
	if (n > BLK_MAX_DISKS) {
		log_error("at most %d --disk options", BLK_MAX_DISKS);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (blk_create_one(vm, specs[i], (int)i) < 0)
			return -1;
	return 0;
}

static const struct device_ops blk_device_ops = {
	.name = "virtio-blk",
	.order = DEVICE_ORDER_VIRTIO,
	.create = blk_create,
	.stop = blk_stop,
	.destroy = blk_destroy,
};
DEVICE_REGISTER(blk_device_ops)
