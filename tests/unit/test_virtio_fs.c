/* The virtio-fs device (devices/virtio_fs.c) over a fake VM and guest
 * memory, created as `run --fs-root DIR` would create it: its config space,
 * a FUSE_INIT pushed on a request queue and answered by a worker (which
 * raises the interrupt itself), and malformed chains refused without harm. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"
#include "lib/rmtree.h"
#include "lib/cli.h"

#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define VFS_ID 26          /* virtio 1.2, 5 "Device Types" */
#define VFS_TAG_LEN 36     /* 5.11.4 */
#define VFS_QUEUE_MAX 1024
#define VFS_REQUEST_QUEUE 1 /* 0 is hiprio (5.11.2) */
#define RING 8
#define REQ 0x20000ULL     /* guest addresses of the request's parts */
#define REPLY 0x30000ULL

struct ft {
	struct fake_vm v;
	struct config cfg;
	char dir[64], root[96], state[96];
	uint64_t base;
};

static void ft_init(struct ft *t, const char *queues)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test-vfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->root, sizeof(t->root), "%s/root", t->dir);
	snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
	ck_assert_int_eq(mkdir(t->root, 0755), 0);
	ck_assert_int_eq(mkdir(t->state, 0755), 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/hello.txt", t->root);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("hello\n", f);
	fclose(f);
	memset(&t->cfg, 0, sizeof(t->cfg));
	t->cfg.command = "run";
	ck_assert_int_eq(config_add(&t->cfg, "fs-root", t->root), 0);
	ck_assert_int_eq(config_add(&t->cfg, "fs-state", t->state), 0);
	ck_assert_int_eq(config_add(&t->cfg, "fs-tag", "testtag"), 0);
	ck_assert_int_eq(config_add(&t->cfg, "no-writeback", NULL), 0);
	if (queues)
		ck_assert_int_eq(config_add(&t->cfg, "fs-queues", queues), 0);
	fake_vm_init(&t->v, &t->cfg, RING);
	ck_assert_int_eq(device_create(&t->v.vm, "virtio-fs"), 0);
	ck_assert_ptr_nonnull(t->v.vm.devices);
	t->base = fake_vm_window(&t->v, 0);
}

static void ft_free(struct ft *t)
{
	fake_vm_free(&t->v);
	ck_assert_ptr_null(t->v.vm.devices);
	config_free(&t->cfg);
	ck_assert_int_eq(rmtree(t->dir), 0);
}

/* Bring the device up with the request queue over the fake ring. */
static void ft_up(struct ft *t)
{
	uint32_t st = driver_negotiate(&t->v, t->base, 1ULL << VIRTIO_F_VERSION_1);
	ck_assert(st & VIRTIO_STATUS_FEATURES_OK);
	driver_queue(&t->v, t->base, VFS_REQUEST_QUEUE, RING);
	ck_assert_uint_eq(reg_rd(&t->v, t->base, REG_QUEUE_READY), 1);
	driver_ok(&t->v, t->base);
}

START_TEST(vfs_config_space)
{
	struct ft t;
	ft_init(&t, "3");
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_DEVICE_ID), VFS_ID);
	char tag[VFS_TAG_LEN + 1] = "";
	for (int i = 0; i < VFS_TAG_LEN; i += 4) {
		uint32_t w = reg_rd(&t.v, t.base, REG_CONFIG + (uint32_t)i);
		memcpy(tag + i, &w, 4);
	}
	ck_assert_str_eq(tag, "testtag");
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_CONFIG + VFS_TAG_LEN), 3);
	/* hiprio + 3 request queues, then none. */
	for (uint32_t q = 0; q < 4; q++) {
		reg_wr(&t.v, t.base, REG_QUEUE_SEL, q);
		ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_QUEUE_NUM_MAX), VFS_QUEUE_MAX);
	}
	reg_wr(&t.v, t.base, REG_QUEUE_SEL, 4);
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_QUEUE_NUM_MAX), 0);
	ft_free(&t);
}
END_TEST

START_TEST(vfs_default_one_request_queue)
{
	struct ft t;
	ft_init(&t, NULL);
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_CONFIG + VFS_TAG_LEN), 1);
	reg_wr(&t.v, t.base, REG_QUEUE_SEL, 2);
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_QUEUE_NUM_MAX), 0);
	ft_free(&t);
}
END_TEST

START_TEST(vfs_fuse_init_is_answered)
{
	struct ft t;
	ft_init(&t, NULL);
	ft_up(&t);
	struct {
		struct fuse_in_header h;
		struct fuse_init_in in;
	} req = {
		.h = {.len = sizeof(req), .opcode = FUSE_INIT, .unique = 42},
		.in = {.major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
		       .max_readahead = 65536},
	};
	memcpy(fake_host(&t.v.f, REQ), &req, sizeof(req));
	size_t reply_len = sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out);
	memset(fake_host(&t.v.f, REPLY), 0xee, reply_len);
	fake_desc(&t.v.f, 0, REQ, sizeof(req), VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&t.v.f, 1, REPLY, (uint32_t)reply_len, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.v.f, 0);
	reg_wr(&t.v, t.base, REG_QUEUE_NOTIFY, VFS_REQUEST_QUEUE);
	ck_assert_uint_ge(fake_vm_wait_irq(&t.v), 1);
	ck_assert_int_eq(fake_used_idx(&t.v.f), 1);
	struct virtq_used_elem e = fake_used(&t.v.f, 0);
	ck_assert_uint_eq(e.id, 0);
	ck_assert_uint_eq(e.len, reply_len);
	struct fuse_out_header oh;
	memcpy(&oh, fake_host(&t.v.f, REPLY), sizeof(oh));
	ck_assert_int_eq(oh.error, 0);
	ck_assert_uint_eq(oh.unique, 42);
	ck_assert_uint_eq(oh.len, reply_len);
	struct fuse_init_out io;
	memcpy(&io, fake_host(&t.v.f, REPLY + sizeof(oh)), sizeof(io));
	ck_assert_uint_eq(io.major, FUSE_KERNEL_VERSION);
	ck_assert(reg_rd(&t.v, t.base, REG_INTERRUPT_STATUS) & INT_VRING);
	ck_assert(!(reg_rd(&t.v, t.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	ft_free(&t);
}
END_TEST

START_TEST(vfs_malformed_chains)
{
	struct ft t;
	ft_init(&t, NULL);
	ft_up(&t);
	/* Too short for a FUSE header: returned with nothing written. */
	memset(fake_host(&t.v.f, REPLY), 0xee, 64);
	fake_desc(&t.v.f, 0, REQ, 8, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&t.v.f, 1, REPLY, 64, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.v.f, 0);
	reg_wr(&t.v, t.base, REG_QUEUE_NOTIFY, VFS_REQUEST_QUEUE);
	ck_assert_uint_ge(fake_vm_wait_irq(&t.v), 1);
	ck_assert_int_eq(fake_used_idx(&t.v.f), 1);
	ck_assert_uint_eq(fake_used(&t.v.f, 0).len, 0);
	ck_assert_uint_eq(*(uint8_t *)fake_host(&t.v.f, REPLY), 0xee);
	ck_assert(!(reg_rd(&t.v, t.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	reg_wr(&t.v, t.base, REG_INTERRUPT_ACK, INT_VRING);
	/* A descriptor loop: the transport refuses the chain, the device
	 * needs a reset and says so with a config interrupt. */
	fake_desc(&t.v.f, 2, REQ, 64, VIRTQ_DESC_F_NEXT, 3);
	fake_desc(&t.v.f, 3, REQ, 64, VIRTQ_DESC_F_NEXT, 2);
	fake_publish(&t.v.f, 2);
	reg_wr(&t.v, t.base, REG_QUEUE_NOTIFY, VFS_REQUEST_QUEUE);
	ck_assert_uint_ge(fake_vm_wait_irq(&t.v), 1);
	ck_assert(reg_rd(&t.v, t.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	ck_assert(reg_rd(&t.v, t.base, REG_INTERRUPT_STATUS) & INT_CONFIG);
	ck_assert_int_eq(fake_vm_wait_used(&t.v, 2), 2);
	ck_assert_uint_eq(fake_used(&t.v.f, 1).len, 0);
	ft_free(&t);
}
END_TEST

static Suite *virtio_fs_suite(void)
{
	Suite *s = suite_create("virtio_fs");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, vfs_config_space);
	tcase_add_test(tc, vfs_default_one_request_queue);
	tcase_add_test(tc, vfs_fuse_init_is_answered);
	tcase_add_test(tc, vfs_malformed_chains);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(virtio_fs_suite)
