/* virtio-blk requests (devices/virtio/blk_req.c) through a real virtqueue
 * over fake guest memory, against a temporary file: each request type,
 * and the malformed requests a hostile driver can send. */
#include "tests/unit/unit.h"
#include "tests/unit/test_virtq_fake.h"
#include "devices/virtio/blk_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM (1ULL << 20)
#define HDR 0x20000ULL
#define DATA 0x30000ULL
#define STATUS 0x40000ULL
#define DISK_SECTORS 64

struct bt {
	struct fake f;
	struct blk_backend b;
	struct virtq_chain *c;
	char path[64];
};

static void bt_init(struct bt *t, bool ro)
{
	fake_init(&t->f, RAM, 8, 1ULL << VIRTIO_F_INDIRECT_DESC);
	snprintf(t->path, sizeof(t->path), "/tmp/test-blk-XXXXXX");
	int fd = mkstemp(t->path);
	ck_assert_int_ge(fd, 0);
	/* Sector s holds the byte s in all its 512 bytes. */
	for (int s = 0; s < DISK_SECTORS; s++) {
		uint8_t buf[512];
		memset(buf, s, sizeof(buf));
		ck_assert_int_eq(pwrite(fd, buf, 512, s * 512), 512);
	}
	memset(&t->b, 0, sizeof(t->b));
	t->b.fd = fd;
	t->b.capacity = DISK_SECTORS;
	t->b.ro = ro;
	memcpy(t->b.id, "disk-serial", 11);
	t->c = malloc(sizeof(*t->c));
	ck_assert_ptr_nonnull(t->c);
}

static void bt_free(struct bt *t)
{
	close(t->b.fd);
	unlink(t->path);
	free(t->c);
	fake_free(&t->f);
}

static void put_hdr(struct bt *t, uint32_t type, uint64_t sector)
{
	struct blk_req_hdr h = {type, 0, sector};
	memcpy(fake_host(&t->f, HDR), &h, sizeof(h));
	*(uint8_t *)fake_host(&t->f, STATUS) = 0xee; /* must be overwritten */
}

/* Pop the published chain, run it, push; returns the used length. */
static uint32_t run(struct bt *t)
{
	ck_assert_int_eq(virtq_pop(&t->f.vq, t->c), 1);
	uint32_t len = blk_handle_request(&t->b, t->c);
	virtq_push(&t->f.vq, t->c, len);
	return len;
}

static uint8_t status(struct bt *t) { return *(uint8_t *)fake_host(&t->f, STATUS); }

/* header, data (len bytes, writable or not), status */
static void chain3(struct bt *t, uint32_t len, bool data_writable)
{
	fake_desc(&t->f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&t->f, 1, DATA, len, VIRTQ_DESC_F_NEXT | (data_writable ? VIRTQ_DESC_F_WRITE : 0), 2);
	fake_desc(&t->f, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t->f, 0);
}

START_TEST(test_read)
{
	struct bt t;
	bt_init(&t, false);
	put_hdr(&t, VIRTIO_BLK_T_IN, 5);
	chain3(&t, 1024, true);
	ck_assert_uint_eq(run(&t), 1025);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK);
	uint8_t *d = fake_host(&t.f, DATA);
	ck_assert_int_eq(d[0], 5);
	ck_assert_int_eq(d[511], 5);
	ck_assert_int_eq(d[512], 6);
	ck_assert_int_eq(d[1023], 6);
	ck_assert_uint_eq(t.b.bytes_read, 1024);
	bt_free(&t);
}
END_TEST

START_TEST(test_read_scattered_indirect)
{
	/* Header split over two descriptors, data over three, in an
	 * indirect table: the device must not assume Linux's layout. */
	struct bt t;
	bt_init(&t, false);
	put_hdr(&t, VIRTIO_BLK_T_IN, 2);
	uint64_t tab = 0x50000;
	fake_desc_at(&t.f, tab, 0, HDR, 5, VIRTQ_DESC_F_NEXT, 1);
	fake_desc_at(&t.f, tab, 1, HDR + 5, 11, VIRTQ_DESC_F_NEXT, 2);
	fake_desc_at(&t.f, tab, 2, DATA, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	fake_desc_at(&t.f, tab, 3, DATA + 0x1000, 412, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
	fake_desc_at(&t.f, tab, 4, DATA + 0x2000, 513, VIRTQ_DESC_F_WRITE, 0);
	fake_desc(&t.f, 0, tab, 5 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&t.f, 0);
	ck_assert_uint_eq(run(&t), 1025);
	uint8_t *d = fake_host(&t.f, DATA);
	ck_assert_int_eq(d[99], 2);
	ck_assert_int_eq(d[0x1000 + 411], 2);
	ck_assert_int_eq(d[0x2000], 3);
	ck_assert_int_eq(d[0x2000 + 511], 3);
	/* the status is the last byte of the last descriptor */
	ck_assert_int_eq(d[0x2000 + 512], VIRTIO_BLK_S_OK);
	bt_free(&t);
}
END_TEST

START_TEST(test_write_and_flush)
{
	struct bt t;
	bt_init(&t, false);
	put_hdr(&t, VIRTIO_BLK_T_OUT, 10);
	memset(fake_host(&t.f, DATA), 0x5a, 512);
	chain3(&t, 512, false);
	ck_assert_uint_eq(run(&t), 1);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK);
	uint8_t buf[512];
	ck_assert_int_eq(pread(t.b.fd, buf, 512, 10 * 512), 512);
	ck_assert_int_eq(buf[0], 0x5a);
	ck_assert_int_eq(buf[511], 0x5a);
	ck_assert_int_eq(pread(t.b.fd, buf, 1, 11 * 512), 1);
	ck_assert_int_eq(buf[0], 11);

	put_hdr(&t, VIRTIO_BLK_T_FLUSH, 0);
	fake_desc(&t.f, 3, HDR, 16, VIRTQ_DESC_F_NEXT, 4);
	fake_desc(&t.f, 4, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.f, 3);
	ck_assert_uint_eq(run(&t), 1);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(t.b.n_flush, 1);
	bt_free(&t);
}
END_TEST

START_TEST(test_read_only_refuses_writes)
{
	struct bt t;
	bt_init(&t, true);
	put_hdr(&t, VIRTIO_BLK_T_OUT, 10);
	memset(fake_host(&t.f, DATA), 0x5a, 512);
	chain3(&t, 512, false);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	uint8_t b;
	ck_assert_int_eq(pread(t.b.fd, &b, 1, 10 * 512), 1);
	ck_assert_int_eq(b, 10); /* unchanged */
	/* and write-zeroes / discard too */
	struct blk_discard_seg seg = {1, 1, 0};
	put_hdr(&t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	memcpy(fake_host(&t.f, HDR + 16), &seg, sizeof(seg));
	fake_desc(&t.f, 3, HDR, 32, VIRTQ_DESC_F_NEXT, 4);
	fake_desc(&t.f, 4, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.f, 3);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(t.b.fd, &b, 1, 512), 1);
	ck_assert_int_eq(b, 1);
	bt_free(&t);
}
END_TEST

START_TEST(test_get_id)
{
	struct bt t;
	bt_init(&t, false);
	put_hdr(&t, VIRTIO_BLK_T_GET_ID, 0);
	chain3(&t, VIRTIO_BLK_ID_BYTES, true);
	ck_assert_uint_eq(run(&t), VIRTIO_BLK_ID_BYTES + 1);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(memcmp(fake_host(&t.f, DATA), "disk-serial\0", 12), 0);
	/* a buffer too small for the 20 bytes */
	put_hdr(&t, VIRTIO_BLK_T_GET_ID, 0);
	chain3(&t, 8, true);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	bt_free(&t);
}
END_TEST

START_TEST(test_out_of_range)
{
	static const uint64_t sectors[] = {DISK_SECTORS, DISK_SECTORS - 1, UINT64_MAX,
					   UINT64_MAX / 512 + 1};
	for (unsigned i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		struct bt t;
		bt_init(&t, false);
		put_hdr(&t, VIRTIO_BLK_T_IN, sectors[i]);
		chain3(&t, 1024, true); /* two sectors: the last one does not fit */
		ck_assert_uint_eq(run(&t), 1);
		ck_assert_msg(status(&t) == VIRTIO_BLK_S_IOERR, "sector %llu accepted",
			      (unsigned long long)sectors[i]);
		put_hdr(&t, VIRTIO_BLK_T_OUT, sectors[i]);
		fake_desc(&t.f, 3, HDR, 16, VIRTQ_DESC_F_NEXT, 4);
		fake_desc(&t.f, 4, DATA, 1024, VIRTQ_DESC_F_NEXT, 5);
		fake_desc(&t.f, 5, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
		fake_publish(&t.f, 3);
		run(&t);
		ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
		struct stat st;
		ck_assert_int_eq(fstat(t.b.fd, &st), 0);
		ck_assert_int_eq(st.st_size, DISK_SECTORS * 512); /* did not grow */
		bt_free(&t);
	}
}
END_TEST

START_TEST(test_malformed_requests)
{
	struct bt t;
	bt_init(&t, false);
	/* data not a multiple of 512 */
	put_hdr(&t, VIRTIO_BLK_T_IN, 0);
	chain3(&t, 100, true);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	/* unknown type */
	put_hdr(&t, 77, 0);
	chain3(&t, 512, true);
	ck_assert_uint_eq(run(&t), 1);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_UNSUPP);
	/* header shorter than 16 bytes */
	put_hdr(&t, VIRTIO_BLK_T_IN, 0);
	fake_desc(&t.f, 3, HDR, 8, VIRTQ_DESC_F_NEXT, 4);
	fake_desc(&t.f, 4, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.f, 3);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	/* no writable byte: nowhere for a status, nothing written */
	put_hdr(&t, VIRTIO_BLK_T_IN, 0);
	fake_desc(&t.f, 5, HDR, 16, 0, 0);
	fake_publish(&t.f, 5);
	ck_assert_uint_eq(run(&t), 0);
	ck_assert_int_eq(status(&t), 0xee);
	/* a write with its data in the writable part: no data to write */
	put_hdr(&t, VIRTIO_BLK_T_OUT, 0);
	chain3(&t, 512, true);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK); /* zero-length write */
	uint8_t b;
	ck_assert_int_eq(pread(t.b.fd, &b, 1, 0), 1);
	ck_assert_int_eq(b, 0);
	ck_assert_uint_eq(t.b.bytes_written, 0);
	ck_assert_uint_eq(fake_used_idx(&t.f), 5);
	bt_free(&t);
}
END_TEST

START_TEST(test_discard_and_write_zeroes)
{
	struct bt t;
	bt_init(&t, false);
	struct blk_discard_seg segs[2] = {{4, 2, 0}, {20, 1, 0}};
	put_hdr(&t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	memcpy(fake_host(&t.f, HDR + 16), segs, sizeof(segs));
	fake_desc(&t.f, 0, HDR, 16 + sizeof(segs), VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&t.f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t.f, 0);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_OK);
	uint8_t buf[512 * 3];
	ck_assert_int_eq(pread(t.b.fd, buf, sizeof(buf), 4 * 512), (ssize_t)sizeof(buf));
	ck_assert_int_eq(buf[0], 0);
	ck_assert_int_eq(buf[1023], 0);
	ck_assert_int_eq(buf[1024], 6);
	ck_assert_int_eq(pread(t.b.fd, buf, 512, 20 * 512), 512);
	ck_assert_int_eq(buf[100], 0);
	/* a segment past the end: refused before anything is zeroed */
	struct blk_discard_seg bad[2] = {{30, 1, 0}, {DISK_SECTORS, 1, 0}};
	put_hdr(&t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	memcpy(fake_host(&t.f, HDR + 16), bad, sizeof(bad));
	fake_publish(&t.f, 0);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(t.b.fd, buf, 1, 30 * 512), 1);
	ck_assert_int_eq(buf[0], 30);
	/* discard with a flag it does not define */
	struct blk_discard_seg flag = {30, 1, 1};
	put_hdr(&t, VIRTIO_BLK_T_DISCARD, 0);
	memcpy(fake_host(&t.f, HDR + 16), &flag, sizeof(flag));
	fake_desc(&t.f, 2, HDR, 32, VIRTQ_DESC_F_NEXT, 1);
	fake_publish(&t.f, 2);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_UNSUPP);
	/* segment list of a length that is not whole segments */
	put_hdr(&t, VIRTIO_BLK_T_DISCARD, 0);
	fake_desc(&t.f, 3, HDR, 16 + 12, VIRTQ_DESC_F_NEXT, 1);
	fake_publish(&t.f, 3);
	run(&t);
	ck_assert_int_eq(status(&t), VIRTIO_BLK_S_IOERR);
	bt_free(&t);
}
END_TEST

static Suite *virtio_blk_suite(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *tc = tcase_create("requests");
	tcase_add_test(tc, test_read);
	tcase_add_test(tc, test_read_scattered_indirect);
	tcase_add_test(tc, test_write_and_flush);
	tcase_add_test(tc, test_read_only_refuses_writes);
	tcase_add_test(tc, test_get_id);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_malformed_requests);
	tcase_add_test(tc, test_discard_and_write_zeroes);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(virtio_blk_suite)
