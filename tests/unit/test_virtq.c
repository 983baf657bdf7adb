/* Split virtqueue (devices/virtio/virtqueue.c) against a fake guest: good
 * chains, and every malformed chain a hostile driver can build. */
#include "tests/unit/unit.h"
#include "tests/unit/test_virtq_fake.h"

#include <stdlib.h>

#define F_INDIRECT (1ULL << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT (1ULL << VIRTIO_F_EVENT_IDX)
#define RAM (1ULL << 20)

static struct virtq_chain *chain_new(void)
{
	struct virtq_chain *c = malloc(sizeof(*c));
	ck_assert_ptr_nonnull(c);
	return c;
}

START_TEST(test_simple_chain)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 0);
	fake_desc(&f, 3, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 5);
	fake_desc(&f, 5, FAKE_DATA + 0x100, 100, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&f, 1, FAKE_DATA + 0x1000, 512, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 3);
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	ck_assert_int_eq(c->head, 3);
	ck_assert_int_eq(c->n_rd, 2);
	ck_assert_int_eq(c->n_wr, 1);
	ck_assert_uint_eq(c->rd_len, 116);
	ck_assert_uint_eq(c->wr_len, 512);
	ck_assert_ptr_eq(c->iov[0].iov_base, fake_host(&f, FAKE_DATA));
	ck_assert_ptr_eq(virtq_chain_wr(c)->iov_base, fake_host(&f, FAKE_DATA + 0x1000));
	ck_assert_int_eq(virtq_pop(&f.vq, c), 0);
	/* len is clamped to the writable part */
	virtq_push(&f.vq, c, 9999);
	ck_assert_int_eq(fake_used_idx(&f), 1);
	ck_assert_uint_eq(fake_used(&f, 0).id, 3);
	ck_assert_uint_eq(fake_used(&f, 0).len, 512);
	virtq_notify(&f.vq);
	ck_assert_int_eq(f.irqs, 1);
	/* nothing new pushed: no second interrupt */
	virtq_notify(&f.vq);
	ck_assert_int_eq(f.irqs, 1);
	ck_assert_int_eq(f.errors, 0);
	free(c);
	fake_free(&f);
}
END_TEST

/* A malformed chain: pop says -1, the head goes back with length 0, the
 * error callback fires once, and the queue stays broken. */
static void expect_bad(struct fake *f, uint16_t head, const char *why_part)
{
	struct virtq_chain *c = chain_new();
	uint16_t used_before = fake_used_idx(f);
	ck_assert_int_eq(virtq_pop(&f->vq, c), -1);
	ck_assert_int_eq(f->errors, 1);
	ck_assert_ptr_nonnull(f->last_error);
	ck_assert_msg(strstr(f->last_error, why_part), "error '%s' lacks '%s'", f->last_error,
		      why_part);
	if (head < f->num) {
		ck_assert_int_eq(fake_used_idx(f), (uint16_t)(used_before + 1));
		ck_assert_uint_eq(fake_used(f, used_before).id, head);
		ck_assert_uint_eq(fake_used(f, used_before).len, 0);
	}
	/* broken until reset, and the callback is not repeated */
	fake_publish(f, 0);
	ck_assert_int_eq(virtq_pop(&f->vq, c), -1);
	ck_assert_int_eq(f->errors, 1);
	ck_assert(!virtq_is_ready(&f->vq));
	free(c);
}

START_TEST(test_loop)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&f, 1, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&f, 2, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "loops");
	fake_free(&f);
}
END_TEST

START_TEST(test_self_loop)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 4, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
	fake_publish(&f, 4);
	expect_bad(&f, 4, "loops");
	fake_free(&f);
}
END_TEST

START_TEST(test_full_length_chain_ok)
{
	/* Exactly queue-size descriptors is legal. */
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	for (uint16_t i = 0; i < 8; i++)
		fake_desc(&f, i, FAKE_DATA + i * 16, 16, i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	fake_publish(&f, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	ck_assert_int_eq(c->n_rd, 8);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_next_out_of_range)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 8);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "beyond the table");
	fake_free(&f);
}
END_TEST

START_TEST(test_head_out_of_range)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_publish(&f, 200);
	expect_bad(&f, 200, "beyond the table");
	ck_assert_int_eq(fake_used_idx(&f), 0); /* nothing to give back */
	fake_free(&f);
}
END_TEST

START_TEST(test_readable_after_writable)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_desc(&f, 1, FAKE_DATA, 16, 0, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "readable descriptor after");
	fake_free(&f);
}
END_TEST

START_TEST(test_buffer_outside_ram)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, RAM, 1, 0, 0); /* first byte past RAM */
	fake_publish(&f, 0);
	expect_bad(&f, 0, "outside guest RAM");
	fake_free(&f);
}
END_TEST

START_TEST(test_buffer_crosses_end)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, RAM - 8, 16, 0, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "outside guest RAM");
	fake_free(&f);
}
END_TEST

START_TEST(test_buffer_address_wraps)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, UINT64_MAX - 4, 0xffffffffu, 0, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "outside guest RAM");
	fake_free(&f);
}
END_TEST

START_TEST(test_absurd_length)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "outside guest RAM");
	fake_free(&f);
}
END_TEST

START_TEST(test_chain_over_4g)
{
	/* 6 GiB of (unbacked) fake RAM: two 3 GiB buffers exceed 2^32. */
	struct fake f;
	fake_init(&f, 6ULL << 30, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 3U << 30, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&f, 1, FAKE_DATA, 3U << 30, 0, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "4 GiB");
	fake_free(&f);
}
END_TEST

START_TEST(test_avail_idx_jump)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	uint16_t *avail = fake_host(&f, FAKE_AVAIL);
	avail[1] = 9; /* nine new entries in a ring of eight */
	expect_bad(&f, UINT16_MAX, "more than the queue size");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_ok)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	uint64_t table = 0x5008; /* 8-byte aligned only: the spec asks no more */
	fake_desc_at(&f, table, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc_at(&f, table, 2, FAKE_DATA + 0x200, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_desc_at(&f, table, 1, FAKE_DATA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	/* one direct readable descriptor, then the table (2.7.5.3.2) */
	fake_desc(&f, 6, FAKE_DATA + 0x800, 8, VIRTQ_DESC_F_NEXT, 7);
	fake_desc(&f, 7, table, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 6);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	ck_assert_int_eq(c->head, 6);
	ck_assert_int_eq(c->n_rd, 2);
	ck_assert_int_eq(c->n_wr, 2);
	ck_assert_uint_eq(c->rd_len, 24);
	ck_assert_uint_eq(c->wr_len, 513);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_not_negotiated)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc_at(&f, 0x5000, 0, FAKE_DATA, 16, 0, 0);
	fake_desc(&f, 0, 0x5000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "without VIRTIO_F_INDIRECT_DESC");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_nested)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc_at(&f, 0x5000, 0, 0x6000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_desc_at(&f, 0x6000, 0, FAKE_DATA, 16, 0, 0);
	fake_desc(&f, 0, 0x5000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "inside an indirect table");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_with_next)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc_at(&f, 0x5000, 0, FAKE_DATA, 16, 0, 0);
	fake_desc(&f, 0, 0x5000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&f, 1, FAKE_DATA, 16, 0, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "NEXT");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_bad_length)
{
	static const uint32_t lens[] = {0, 8, 24, 17};
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct fake f;
		fake_init(&f, RAM, 8, F_INDIRECT);
		fake_desc(&f, 0, 0x5000, lens[i], VIRTQ_DESC_F_INDIRECT, 0);
		fake_publish(&f, 0);
		expect_bad(&f, 0, "multiple of 16");
		fake_free(&f);
	}
}
END_TEST

START_TEST(test_indirect_too_long)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc(&f, 0, 0x5000, 16 * (VIRTQ_CHAIN_MAX + 1), VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "longer than the chain limit");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_outside_ram)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc(&f, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "indirect table outside");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_loop)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc_at(&f, 0x5000, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc_at(&f, 0x5000, 1, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_desc(&f, 0, 0x5000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "loops");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_next_beyond_table)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	fake_desc_at(&f, 0x5000, 0, FAKE_DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&f, 0, 0x5000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	expect_bad(&f, 0, "beyond the table");
	fake_free(&f);
}
END_TEST

START_TEST(test_indirect_long_chain)
{
	/* An indirect table may hold more descriptors than the ring: 300 in
	 * a queue of 8, as Linux does for large requests. */
	struct fake f;
	fake_init(&f, RAM, 8, F_INDIRECT);
	for (uint16_t i = 0; i < 300; i++)
		fake_desc_at(&f, 0x8000, i, FAKE_DATA, 8,
			     (i < 299 ? VIRTQ_DESC_F_NEXT : 0) | (i >= 100 ? VIRTQ_DESC_F_WRITE : 0),
			     i + 1);
	fake_desc(&f, 0, 0x8000, 300 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&f, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	ck_assert_int_eq(c->n_rd, 100);
	ck_assert_int_eq(c->n_wr, 200);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_enable_checks)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	struct virtq *vq = &f.vq;
	static const uint16_t bad_num[] = {0, 3, 6, 512};
	for (unsigned i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++) {
		virtq_reset(vq);
		vq->num = bad_num[i];
		vq->desc_gpa = FAKE_DESC, vq->avail_gpa = FAKE_AVAIL, vq->used_gpa = FAKE_USED;
		ck_assert_int_eq(virtq_enable(vq, 0), -1);
	}
	struct { uint64_t d, a, u; } bad[] = {
		{FAKE_DESC + 8, FAKE_AVAIL, FAKE_USED},     /* desc needs 16 */
		{FAKE_DESC, FAKE_AVAIL + 1, FAKE_USED},     /* avail needs 2 */
		{FAKE_DESC, FAKE_AVAIL, FAKE_USED + 2},     /* used needs 4 */
		{RAM - 64, FAKE_AVAIL, FAKE_USED},          /* table crosses the end */
		{FAKE_DESC, FAKE_AVAIL, RAM - 8},
		{FAKE_DESC, UINT64_MAX - 1, FAKE_USED},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		virtq_reset(vq);
		vq->num = 8;
		vq->desc_gpa = bad[i].d, vq->avail_gpa = bad[i].a, vq->used_gpa = bad[i].u;
		ck_assert_msg(virtq_enable(vq, 0) == -1, "case %u accepted", i);
		ck_assert(!virtq_is_ready(vq));
	}
	fake_free(&f);
}
END_TEST

START_TEST(test_reset_drops_stale_push)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	fake_desc(&f, 0, FAKE_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	virtq_reset(&f.vq);
	f.vq.num = 8;
	f.vq.desc_gpa = FAKE_DESC, f.vq.avail_gpa = FAKE_AVAIL, f.vq.used_gpa = FAKE_USED;
	memset(fake_host(&f, FAKE_USED), 0, 0x100);
	memset(fake_host(&f, FAKE_AVAIL), 0, 0x100);
	f.avail_idx = 0;
	ck_assert_int_eq(virtq_enable(&f.vq, 0), 0);
	virtq_push(&f.vq, c, 16); /* popped before the reset: dropped */
	ck_assert_int_eq(fake_used_idx(&f), 0);
	/* and a broken queue is usable again after reset */
	fake_desc(&f, 0, RAM, 16, 0, 0);
	fake_publish(&f, 0);
	ck_assert_int_eq(virtq_pop(&f.vq, c), -1);
	virtq_reset(&f.vq);
	f.vq.num = 8;
	f.vq.desc_gpa = FAKE_DESC, f.vq.avail_gpa = FAKE_AVAIL, f.vq.used_gpa = FAKE_USED;
	memset(fake_host(&f, FAKE_AVAIL), 0, 0x100);
	f.avail_idx = 0;
	ck_assert_int_eq(virtq_enable(&f.vq, 0), 0);
	fake_desc(&f, 0, FAKE_DATA, 16, 0, 0);
	fake_publish(&f, 0);
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_no_interrupt_flag)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	uint16_t *avail = fake_host(&f, FAKE_AVAIL);
	avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	fake_desc(&f, 0, FAKE_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	virtq_push(&f.vq, c, 1);
	virtq_notify(&f.vq);
	ck_assert_int_eq(f.irqs, 0);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_event_idx)
{
	struct fake f;
	fake_init(&f, RAM, 8, F_EVENT);
	uint16_t *avail = fake_host(&f, FAKE_AVAIL);
	uint16_t *avail_event = fake_host(&f, FAKE_USED + 4 + 8 * 8);
	avail[2 + 8] = 2; /* used_event: interrupt once used idx passes 2 */
	struct virtq_chain *c = chain_new();
	int irqs_at[5];
	for (int i = 0; i < 5; i++) {
		fake_desc(&f, (uint16_t)i, FAKE_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
		fake_publish(&f, (uint16_t)i);
		ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
		ck_assert_uint_eq(*avail_event, (uint16_t)(i + 1)); /* published after pop */
		virtq_push(&f.vq, c, 1);
		virtq_notify(&f.vq);
		irqs_at[i] = f.irqs;
	}
	/* first notify always signals; then only when used idx goes 2 -> 3 */
	ck_assert_int_eq(irqs_at[0], 1);
	ck_assert_int_eq(irqs_at[1], 1);
	ck_assert_int_eq(irqs_at[2], 2);
	ck_assert_int_eq(irqs_at[4], 2);
	/* the queue is empty: avail_event asks for the next one */
	ck_assert_int_eq(virtq_pop(&f.vq, c), 0);
	ck_assert_uint_eq(*avail_event, 5);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_chain_copy_and_slice)
{
	struct fake f;
	fake_init(&f, RAM, 8, 0);
	uint8_t *d = fake_host(&f, FAKE_DATA);
	for (int i = 0; i < 64; i++)
		d[i] = (uint8_t)i;
	fake_desc(&f, 0, FAKE_DATA, 5, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&f, 1, FAKE_DATA + 5, 11, VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&f, 2, FAKE_DATA + 0x100, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	fake_desc(&f, 3, FAKE_DATA + 0x200, 3, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&f, 0);
	struct virtq_chain *c = chain_new();
	ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
	uint8_t buf[16];
	ck_assert_int_eq(virtq_chain_read(c, 3, buf, 10), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(buf[i], 3 + i);
	ck_assert_int_eq(virtq_chain_read(c, 10, buf, 7), -1); /* only 16 readable */
	const uint8_t w[4] = {0xa, 0xb, 0xc, 0xd};
	ck_assert_int_eq(virtq_chain_write(c, 1, w, 4), 0);
	ck_assert_int_eq(d[0x101], 0xa);
	ck_assert_int_eq(d[0x102], 0xb);
	ck_assert_int_eq(d[0x200], 0xc);
	ck_assert_int_eq(d[0x201], 0xd);
	ck_assert_int_eq(virtq_chain_write(c, 3, w, 4), -1);
	struct iovec out[4];
	ck_assert_int_eq(iov_slice(c->iov, c->n_rd, 4, 3, out, 4), 2);
	ck_assert_ptr_eq(out[0].iov_base, d + 4);
	ck_assert_uint_eq(out[0].iov_len, 1);
	ck_assert_uint_eq(out[1].iov_len, 2);
	ck_assert_int_eq(iov_slice(c->iov, c->n_rd, 0, 16, out, 1), -1); /* needs 2 */
	ck_assert_int_eq(iov_slice(c->iov, c->n_rd, 10, 7, out, 4), -1); /* past the end */
	ck_assert_int_eq(iov_slice(c->iov, c->n_rd, 16, 0, out, 4), 0);
	free(c);
	fake_free(&f);
}
END_TEST

START_TEST(test_ring_wraps)
{
	/* 70000 requests through a ring of 4: the 16-bit indexes wrap. */
	struct fake f;
	fake_init(&f, RAM, 4, F_EVENT);
	struct virtq_chain *c = chain_new();
	for (int i = 0; i < 70000; i++) {
		uint16_t h = (uint16_t)(i % 4);
		fake_desc(&f, h, FAKE_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
		fake_publish(&f, h);
		ck_assert_int_eq(virtq_pop(&f.vq, c), 1);
		ck_assert_int_eq(c->head, h);
		virtq_push(&f.vq, c, 4);
	}
	ck_assert_int_eq(fake_used_idx(&f), (uint16_t)70000);
	ck_assert_int_eq(f.errors, 0);
	free(c);
	fake_free(&f);
}
END_TEST

static Suite *virtq_suite(void)
{
	Suite *s = suite_create("virtq");
	TCase *tc = tcase_create("split");
	tcase_add_test(tc, test_simple_chain);
	tcase_add_test(tc, test_loop);
	tcase_add_test(tc, test_self_loop);
	tcase_add_test(tc, test_full_length_chain_ok);
	tcase_add_test(tc, test_next_out_of_range);
	tcase_add_test(tc, test_head_out_of_range);
	tcase_add_test(tc, test_readable_after_writable);
	tcase_add_test(tc, test_buffer_outside_ram);
	tcase_add_test(tc, test_buffer_crosses_end);
	tcase_add_test(tc, test_buffer_address_wraps);
	tcase_add_test(tc, test_absurd_length);
	tcase_add_test(tc, test_chain_over_4g);
	tcase_add_test(tc, test_avail_idx_jump);
	tcase_add_test(tc, test_indirect_ok);
	tcase_add_test(tc, test_indirect_not_negotiated);
	tcase_add_test(tc, test_indirect_nested);
	tcase_add_test(tc, test_indirect_with_next);
	tcase_add_test(tc, test_indirect_bad_length);
	tcase_add_test(tc, test_indirect_too_long);
	tcase_add_test(tc, test_indirect_outside_ram);
	tcase_add_test(tc, test_indirect_loop);
	tcase_add_test(tc, test_indirect_next_beyond_table);
	tcase_add_test(tc, test_indirect_long_chain);
	tcase_add_test(tc, test_enable_checks);
	tcase_add_test(tc, test_reset_drops_stale_push);
	tcase_add_test(tc, test_no_interrupt_flag);
	tcase_add_test(tc, test_event_idx);
	tcase_add_test(tc, test_chain_copy_and_slice);
	tcase_add_test(tc, test_ring_wraps);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(virtq_suite)
