#include "vmm/loader.h"
#include "vmm/layout.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOADER_MAX 8
#define LOADER_MAX_CLAIMS 64
/* A kernel bigger than this is surely not one. */
#define LOADER_MAX_KERNEL (512ULL << 20)

static const struct loader_ops *loaders[LOADER_MAX];
static int n_loaders;

static struct {
	uint64_t gpa, len;
	const char *what;
} claims[LOADER_MAX_CLAIMS];
static int n_claims;

void loader_register(const struct loader_ops *ops)
{
	if (n_loaders == LOADER_MAX)
		abort();
	int i = n_loaders++;
	while (i > 0 && loaders[i - 1]->priority > ops->priority) {
		loaders[i] = loaders[i - 1];
		i--;
	}
	loaders[i] = ops;
}

void loader_reset_claims(void)
{
	n_claims = 0;
}

int loader_claim(struct vm *vm, uint64_t gpa, uint64_t len, const char *what)
{
	if (len == 0)
		return 0;
	if (!gmem_is_ram(&vm->mem, gpa, len)) {
		log_error("%s at 0x%" PRIx64 "-0x%" PRIx64 " does not fit in guest RAM "
			  "(%" PRIu64 " MiB; try a larger --memory)", what, gpa, gpa + len,
			  vm->mem.ram_size >> 20);
		return -1;
	}
	for (int i = 0; i < n_claims; i++) {
		if (gpa < claims[i].gpa + claims[i].len && claims[i].gpa < gpa + len) {
			log_error("%s at 0x%" PRIx64 "-0x%" PRIx64 " overlaps %s at 0x%" PRIx64
				  "-0x%" PRIx64, what, gpa, gpa + len, claims[i].what,
				  claims[i].gpa, claims[i].gpa + claims[i].len);
			return -1;
		}
	}
	if (n_claims == LOADER_MAX_CLAIMS) {
		log_error("%s: too many pieces to place", what);
		return -1;
	}
	claims[n_claims].gpa = gpa;
	claims[n_claims].len = len;
	claims[n_claims].what = what;
	n_claims++;
	return 0;
}

int loader_claim_linux_boot(struct vm *vm)
{
	return loader_claim(vm, LAYOUT_GDT, LAYOUT_PAGE_TABLES_END - LAYOUT_GDT,
			    "boot structures (GDT, zero page, page tables)") < 0 ||
	       loader_claim(vm, LAYOUT_STACK_BOTTOM, LAYOUT_STACK_TOP - LAYOUT_STACK_BOTTOM,
			    "the boot stack") < 0 ? -1 : 0;
}

static bool claims_overlap(uint64_t gpa, uint64_t len, uint64_t *after)
{
	for (int i = 0; i < n_claims; i++) {
		if (gpa < claims[i].gpa + claims[i].len && claims[i].gpa < gpa + len) {
			*after = claims[i].gpa + claims[i].len;
			return true;
		}
	}
	return false;
}

int loader_find_free(struct vm *vm, uint64_t lo, uint64_t hi, uint64_t len, uint64_t align,
		     uint64_t *gpa)
{
	if (len == 0 || align == 0 || (align & (align - 1)))
		return -1;
	uint64_t at = (lo + align - 1) & ~(align - 1);
	/* Every step moves at past one claim's end, so this ends. */
	while (at >= lo && at < hi && len <= hi - at) {
		uint64_t next;
		if (!claims_overlap(at, len, &next)) {
			if (!gmem_is_ram(&vm->mem, at, len))
				return -1;
			*gpa = at;
			return 0;
		}
		at = (next + align - 1) & ~(align - 1);
	}
	return -1;
}

int loader_place(struct vm *vm, uint64_t preferred, uint64_t len, uint64_t align,
		 const char *what, uint64_t *gpa)
{
	uint64_t next;
	if (preferred && !claims_overlap(preferred, len, &next) &&
	    gmem_is_ram(&vm->mem, preferred, len)) {
		*gpa = preferred;
		return loader_claim(vm, preferred, len, what);
	}
	/* Conventional memory first, as a BIOS-era loader would, then from
	 * 1 MiB up to the hole (below 4 GiB: 32-bit guests take the address). */
	if (loader_find_free(vm, LAYOUT_LOW_FREE, LAYOUT_EBDA, len, align, gpa) == 0 ||
	    loader_find_free(vm, LAYOUT_HIGH_MEMORY, gmem_low_end(&vm->mem), len, align, gpa) == 0)
		return loader_claim(vm, *gpa, len, what);
	log_error("no room for %s (%" PRIu64 " bytes): the image and minivmm's own structures "
		  "fill guest RAM below 0x%" PRIx64 "; try a larger --memory", what, len,
		  gmem_low_end(&vm->mem));
	return -1;
}

int loader_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		log_error("%s is too large (%lld bytes, at most %" PRIu64 ")", path,
			  (long long)st.st_size, max);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = read(fd, buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("cannot read %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
			free(buf);
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = size;
	return 0;
}

/* The first loader (by priority) that recognises buf, or NULL after a
 * message naming the file and the formats minivmm boots. */
static const struct loader_ops *loader_find(const char *name, const uint8_t *buf, size_t len)
{
	for (int i = 0; i < n_loaders; i++)
		if (loaders[i]->probe(buf, len))
			return loaders[i];
	char names[256] = "";
	for (int i = 0; i < n_loaders; i++) {
		size_t used = strlen(names);
		snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", loaders[i]->name);
	}
	log_error("%s is not a kernel minivmm can boot (formats: %s)", name, names);
	return NULL;
}

int loader_load_buffer(struct vm *vm, const char *name, const uint8_t *buf, size_t len,
		       const char *cmdline, const char *initrd_path)
{
	struct load_args a = {
		.kernel_path = name,
		.kernel = buf,
		.kernel_size = len,
		.cmdline = cmdline ? cmdline : "",
		.initrd_path = initrd_path,
	};
	loader_reset_claims();
	const struct loader_ops *ops = loader_find(name, buf, len);
	if (!ops)
		return -1;
	log_debug("%s: loading as %s", name, ops->name);
	int rc = ops->load(vm, &a);
	if (rc == 0 && !vm->boot.format)
		vm->boot.format = ops->name;
	return rc;
}

int loader_check(const char *kernel_path, const char *initrd_path)
{
	uint8_t *buf;
	size_t len;
	if (loader_read_file(kernel_path, LOADER_MAX_KERNEL, &buf, &len) < 0)
		return -1;
	const struct loader_ops *ops = loader_find(kernel_path, buf, len);
	free(buf);
	if (!ops)
		return -1;
	if (initrd_path && access(initrd_path, R_OK) < 0) {
		log_error("cannot open the initrd %s: %s", initrd_path, strerror(errno));
		return -1;
	}
	return 0;
}

int loader_load(struct vm *vm, const char *kernel_path, const char *cmdline,
		const char *initrd_path)
{
	uint8_t *buf;
	size_t len;
	if (loader_read_file(kernel_path, LOADER_MAX_KERNEL, &buf, &len) < 0)
		return -1;
	int rc = loader_load_buffer(vm, kernel_path, buf, len, cmdline, initrd_path);
	free(buf);
	return rc;
}
