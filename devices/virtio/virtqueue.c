/*
 * Split virtqueues, device side (virtio 1.2 section 2.7). The contract is
 * in virtqueue.h; this file assumes a little-endian host (x86-64), as the
 * rings are little-endian (2.7 "le16", "le32", "le64").
 */
#include "devices/virtio/virtqueue.h"

#include <string.h>

/* Queue part alignments (2.7, table "Queue Part Alignment"). */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4
/* Ring sizes in bytes (2.7.6, 2.7.8): flags, idx, ring, event word. */
#define VIRTQ_AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define VIRTQ_USED_BYTES(n) (6ULL + 8ULL * (n))
/* 2.7.5: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes". */
#define VIRTQ_CHAIN_MAX_BYTES (1ULL << 32)

void virtq_init(struct virtq *vq, const struct guest_mem *mem, uint16_t index,
		uint16_t max_size, virtq_irq_fn irq, virtq_error_fn error, void *opaque)
{
	memset(vq, 0, sizeof(*vq));
	pthread_mutex_init(&vq->lock, NULL);
	vq->mem = mem;
	vq->index = index;
	vq->max_size = max_size;
	vq->irq = irq;
	vq->error = error;
	vq->cb_opaque = opaque;
}

void virtq_destroy(struct virtq *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

/* Offsets of the words in the rings, in units of the pointer type. */
static inline uint16_t avail_idx(struct virtq *vq)
{
	return __atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE);
}

static inline uint16_t avail_flags(struct virtq *vq)
{
	return __atomic_load_n(&vq->avail[0], __ATOMIC_RELAXED);
}

static inline uint16_t avail_ring(struct virtq *vq, uint16_t slot)
{
	return __atomic_load_n(&vq->avail[2 + slot], __ATOMIC_RELAXED);
}

static inline uint16_t used_event(struct virtq *vq)
{
	return __atomic_load_n(&vq->avail[2 + vq->num], __ATOMIC_RELAXED);
}

static inline void set_avail_event(struct virtq *vq, uint16_t v)
{
	volatile uint16_t *p = (volatile uint16_t *)(vq->used + 4 + 8ULL * vq->num);
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void set_used_idx(struct virtq *vq, uint16_t v)
{
	volatile uint16_t *p = (volatile uint16_t *)(vq->used + 2);
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

int virtq_enable(struct virtq *vq, uint64_t features)
{
	pthread_mutex_lock(&vq->lock);
	int rc = -1;
	uint16_t n = vq->num;
	/* 2.7: the queue size of a split queue is a power of 2. */
	if (n == 0 || n > vq->max_size || (n & (n - 1)))
		goto out;
	if ((vq->desc_gpa % VIRTQ_DESC_ALIGN) || (vq->avail_gpa % VIRTQ_AVAIL_ALIGN) ||
	    (vq->used_gpa % VIRTQ_USED_ALIGN))
		goto out;
	void *d = gmem_ptr(vq->mem, vq->desc_gpa, 16ULL * n);
	void *a = gmem_ptr(vq->mem, vq->avail_gpa, VIRTQ_AVAIL_BYTES(n));
	void *u = gmem_ptr(vq->mem, vq->used_gpa, VIRTQ_USED_BYTES(n));
	if (!d || !a || !u)
		goto out;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	vq->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->ready = true;
	rc = 0;
out:
	pthread_mutex_unlock(&vq->lock);
	return rc;
}

void virtq_reset(struct virtq *vq)
{
	pthread_mutex_lock(&vq->lock);
	vq->ready = false;
	vq->broken = false;
	vq->gen++;
	vq->num = 0;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	pthread_mutex_unlock(&vq->lock);
}

bool virtq_is_ready(struct virtq *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool r = vq->ready && !vq->broken;
	pthread_mutex_unlock(&vq->lock);
	return r;
}

/* Read one descriptor exactly once: later checks and uses all look at the
 * copy, so a guest rewriting the table meanwhile changes nothing. */
static void desc_fetch(const volatile struct virtq_desc *t, uint32_t i, struct virtq_desc *out)
{
	out->addr = t[i].addr;
	out->len = t[i].len;
	out->flags = t[i].flags;
	out->next = t[i].next;
}

/* Walk the chain at head into c. Returns NULL, or the rule it breaks. */
static const char *chain_walk(struct virtq *vq, uint16_t head, struct virtq_chain *c)
{
	const volatile struct virtq_desc *table = vq->desc;
	uint32_t count = vq->num; /* descriptors in the current table */
	uint32_t visits = 0;      /* descriptors followed in the current table */
	bool in_indirect = false, seen_write = false;
	uint64_t total = 0;
	uint32_t i = head;
	unsigned n = 0;

	c->head = head;
	c->n_rd = c->n_wr = 0;
	c->rd_len = c->wr_len = 0;
	for (;;) {
		if (i >= count)
			return "descriptor index beyond the table";
		/* More visits than the table has entries: the chain loops or is
		 * longer than the queue size (2.7.5.3.1). */
		if (++visits > count)
			return "descriptor chain loops or is longer than the queue";
		struct virtq_desc d;
		desc_fetch(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
			if (in_indirect)
				return "indirect descriptor inside an indirect table";
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return "indirect descriptor with NEXT set";
			if (d.len == 0 || d.len % sizeof(struct virtq_desc))
				return "indirect table length not a multiple of 16";
			if (d.len / sizeof(struct virtq_desc) > VIRTQ_CHAIN_MAX)
				return "indirect table longer than the chain limit";
			/* The spec asks no alignment of an indirect table;
			 * descriptors are copied one by one, so none is needed. */
			const void *t = gmem_ptr(vq->mem, d.addr, d.len);
			if (!t)
				return "indirect table outside guest RAM";
			table = t;
			count = d.len / sizeof(struct virtq_desc);
			visits = 0;
			in_indirect = true;
			i = 0;
			continue;
		}
		if (d.flags & VIRTQ_DESC_F_WRITE)
			seen_write = true;
		else if (seen_write)
			return "device-readable descriptor after a device-writable one";
		total += d.len;
		if (total > VIRTQ_CHAIN_MAX_BYTES)
			return "descriptor chain longer than 4 GiB";
		if (n == VIRTQ_CHAIN_MAX)
			return "descriptor chain has too many descriptors";
		void *p = gmem_ptr(vq->mem, d.addr, d.len);
		if (!p)
			return "buffer outside guest RAM";
		c->iov[n].iov_base = p;
		c->iov[n].iov_len = d.len;
		n++;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->n_wr++;
			c->wr_len += d.len;
		} else {
			c->n_rd++;
			c->rd_len += d.len;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return NULL;
		i = d.next;
	}
}

/* Caller holds the lock. Puts one used element and publishes it. */
static void used_put(struct virtq *vq, uint16_t head, uint32_t len)
{
	volatile struct virtq_used_elem *e =
		(volatile struct virtq_used_elem *)(vq->used + 4 + 8ULL * (vq->used_idx % vq->num));
	e->id = head;
	e->len = len;
	vq->used_idx++;
	/* 2.7.8.2: the element before idx (release orders the two). */
	set_used_idx(vq, vq->used_idx);
	vq->n_pushed++;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	const char *why = NULL;
	pthread_mutex_lock(&vq->lock);
	if (!vq->ready) {
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	if (vq->broken) {
		pthread_mutex_unlock(&vq->lock);
		return -1;
	}
	uint16_t ai = avail_idx(vq);
	if (ai == vq->last_avail && vq->event_idx) {
		/* Ask for a notification at the next buffer, then look again:
		 * the driver may have added one before it saw avail_event. */
		set_avail_event(vq, vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		ai = avail_idx(vq);
	}
	if (ai == vq->last_avail) {
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	uint16_t head = UINT16_MAX; /* none taken yet */
	if ((uint16_t)(ai - vq->last_avail) > vq->num) {
		why = "available index moved by more than the queue size";
		goto broken;
	}
	head = avail_ring(vq, vq->last_avail % vq->num);
	vq->last_avail++;
	if (vq->event_idx)
		set_avail_event(vq, vq->last_avail);
	why = chain_walk(vq, head, c);
	if (why)
		goto broken;
	c->gen = vq->gen;
	vq->n_popped++;
	pthread_mutex_unlock(&vq->lock);
	return 1;

broken:
	vq->broken = true;
	vq->n_bad++;
	uint32_t gen = vq->gen;
	bool head_valid = head < vq->num;
	pthread_mutex_unlock(&vq->lock);
	/* Outside the lock: the transport takes its own locks. The device
	 * is marked broken before the chain comes back, so a driver that
	 * sees the chain returned also sees DEVICE_NEEDS_RESET. */
	if (vq->error)
		vq->error(vq->cb_opaque, vq, why);
	if (!head_valid)
		return -1;
	/* Give the buffer back so the driver does not wait on it forever. */
	pthread_mutex_lock(&vq->lock);
	bool put = vq->ready && vq->gen == gen;
	if (put)
		used_put(vq, head, 0);
	pthread_mutex_unlock(&vq->lock);
	if (put && vq->irq)
		vq->irq(vq->cb_opaque, vq);
	return -1;
}

void virtq_push(struct virtq *vq, const struct virtq_chain *c, uint32_t len)
{
	pthread_mutex_lock(&vq->lock);
	if (vq->ready && c->gen == vq->gen && c->head < vq->num) {
		if (len > c->wr_len)
			len = (uint32_t)c->wr_len;
		used_put(vq, c->head, len);
	}
	pthread_mutex_unlock(&vq->lock);
}

/* 2.7.7.2 with EVENT_IDX: notify when used idx passed used_event since the
 * last notification (the vring_need_event arithmetic of virtio_ring.h). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

void virtq_notify(struct virtq *vq)
{
	pthread_mutex_lock(&vq->lock);
	if (!vq->ready || (vq->signalled_valid && vq->signalled_used == vq->used_idx)) {
		pthread_mutex_unlock(&vq->lock);
		return;
	}
	/* The used idx store must be visible before we read the driver's
	 * suppression word, or both sides may wait for each other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bool need;
	if (vq->event_idx) {
		uint16_t old = vq->signalled_used;
		bool valid = vq->signalled_valid;
		need = !valid || need_event(used_event(vq), vq->used_idx, old);
	} else {
		need = !(avail_flags(vq) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (need)
		vq->n_irqs++;
	else
		vq->n_irqs_suppressed++;
	pthread_mutex_unlock(&vq->lock);
	if (need && vq->irq)
		vq->irq(vq->cb_opaque, vq);
}

int virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	return iov_copy_from(c->iov, c->n_rd, off, dst, len) == len ? 0 : -1;
}

int virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	return iov_copy_to(c->iov + c->n_rd, c->n_wr, off, src, len) == len ? 0 : -1;
}

