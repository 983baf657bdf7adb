/*
 * libFuzzer target: the FUSE request parser and ops of the file-request
 * server (fs/fuse_wire.c, fs/ops_*.c, fs/tree.c) driven by a hostile guest.
 *
 * Each input is a fresh server (after INIT) over a small hand-built image
 * (a directory, a small file, a chunked file, a symlink, a hard link)
 * whose content comes from memory, and a sequence of requests:
 *   byte 0  flags: bit 0 set the header's len to the real length,
 *           bits 1-7 where the request is split in two iovecs
 *   byte 1  out buffer size / 8 (0 = no room for a reply)
 *   bytes 2-3  request length N (little-endian), then N bytes
 * The target aborts if a reply is longer than its buffer or its header's
 * len disagrees with the bytes written.
 */
#include "fs/fs.h"
#include "lib/rmtree.h"
#include "lib/log.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK 4096
static uint8_t chunks[4][32];
static struct manifest_entry entries[] = {
	{.path = "", .type = MF_DIR, .mode = 0755},
	{.path = "big", .type = MF_REG, .mode = 0644, .size = 3 * CHUNK + 10, .has_digest = true,
	 .n_chunks = 4, .chunks = chunks},
	{.path = "d", .type = MF_DIR, .mode = 0755},
	{.path = "d/f", .type = MF_REG, .mode = 0644, .size = 5, .has_digest = true},
	{.path = "d/h", .type = MF_HARDLINK, .target = "d/f"},
	{.path = "l", .type = MF_SYMLINK, .mode = 0777, .size = 3, .target = "d/f"},
};
static struct manifest mf = {
	.version = 1, .chunk_size = CHUNK, .entries = entries,
	.n_entries = sizeof(entries) / sizeof(entries[0]), .total_bytes = 3 * CHUNK + 15,
};
static char state[64];

static void remove_state(void)
{
	if (rmtree(state) < 0)
		fprintf(stderr, "fuzz_fuse: could not remove %s\n", state);
}

static int mem_open(void *ctx, const struct manifest_entry *e, struct fs_fetch_info *info)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -EIO;
	/* A pipe is not seekable: pread fails and the server must cope. */
	if (write(fds[1], "hello", 5) != 5) {
		close(fds[0]);
		close(fds[1]);
		return -EIO;
	}
	close(fds[1]);
	info->fetched = true;
	info->bytes = e->size;
	return fds[0];
}

static ssize_t mem_range(void *ctx, const struct manifest_entry *e, uint64_t off, void *buf,
			 size_t len, struct fs_fetch_info *info)
{
	if (off >= e->size)
		return 0;
	if (len > e->size - off)
		len = (size_t)(e->size - off);
	memset(buf, 'z', len);
	info->fetched = true;
	return (ssize_t)len;
}

static const struct fs_backend mem_backend = {
	.name = "mem", .open_content = mem_open, .read_range = mem_range,
};

static size_t call(struct fs *fs, const uint8_t *req, size_t len, size_t split, size_t outlen)
{
	static uint8_t out[4096];
	struct iovec in[2] = {{(void *)req, split < len ? split : len},
			      {(void *)(req + (split < len ? split : len)), len - (split < len ? split : len)}};
	struct iovec o = {out, outlen};
	size_t r = fs_handle(fs, in, 2, &o, 1);
	if (r > outlen)
		abort();
	if (r) {
		struct fuse_out_header oh;
		memcpy(&oh, out, sizeof(oh));
		if (oh.len != r)
			abort();
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!state[0]) {
		log_set_quiet(1);
		snprintf(state, sizeof(state), "/tmp/fuzz_fuse.XXXXXX");
		if (!mkdtemp(state))
			abort();
		atexit(remove_state);
	}
	char err[256];
	struct fs_options o = {.manifest = &mf, .backend = &mem_backend, .state_dir = state};
	struct fs *fs = fs_create(&o, err, sizeof(err));
	if (!fs)
		abort();
	struct {
		struct fuse_in_header h;
		struct fuse_init_in i;
	} init = {{.len = sizeof(init), .opcode = FUSE_INIT, .unique = 1}, {.major = 7, .minor = 38}};
	call(fs, (const uint8_t *)&init, sizeof(init), sizeof(init), 4096);

	uint8_t req[65536 + 64];
	while (size >= 4) {
		uint8_t flags = data[0];
		size_t outlen = (size_t)data[1] * 8 + (data[1] ? 8 : 0);
		size_t n = (size_t)data[2] | (size_t)data[3] << 8;
		data += 4, size -= 4;
		if (n > size)
			n = size;
		memcpy(req, data, n);
		data += n, size -= n;
		if ((flags & 1) && n >= sizeof(struct fuse_in_header)) {
			uint32_t len = (uint32_t)n;
			memcpy(req, &len, sizeof(len));
		}
		call(fs, req, n, (size_t)(flags >> 1) * 4, outlen);
	}
	fs_destroy(fs);
	return 0;
}
