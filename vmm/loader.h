/*
 * Kernel loaders.
 *
 * Each format (ELF64 test guest, Multiboot v1, Linux bzImage, Linux ELF
 * vmlinux) is one file that registers a struct loader_ops with
 * LOADER_REGISTER. loader_load reads the kernel file and asks each loader,
 * in ascending .priority, whether it recognises the bytes; the first that
 * does places the image in guest RAM and fills vm->boot. A file no loader
 * recognises is refused with a message listing the formats.
 *
 * Loaders treat the file as untrusted: every offset and size from a header
 * is checked against the file and against guest RAM.
 */
#ifndef MINIVMM_LOADER_H
#define MINIVMM_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

struct load_args {
	const char *kernel_path;
	const uint8_t *kernel;  /* the whole file */
	size_t kernel_size;
	const char *cmdline;    /* never NULL; may be "" */
	const char *initrd_path; /* NULL if none */
};

struct loader_ops {
	const char *name;
	int priority; /* lower is asked first */
	/* Does this loader recognise the file? Must only read. */
	bool (*probe)(const uint8_t *buf, size_t len);
	/* Place the image; returns 0, or -1 after printing why. */
	int (*load)(struct vm *vm, const struct load_args *args);
};

void loader_register(const struct loader_ops *ops);

#define LOADER_REGISTER(ops)                                                    \
	__attribute__((constructor)) static void loader_reg_##ops(void)         \
	{ loader_register(&(ops)); }

/* Load the kernel named in args (reads the file). 0 or -1. */
int loader_load(struct vm *vm, const char *kernel_path, const char *cmdline,
		const char *initrd_path);

/* Before a VM exists (no /dev/kvm needed): is the kernel a readable file
 * of a format some loader recognises, and the initrd (may be NULL)
 * readable? 0, or -1 after a message naming the file and the problem. */
int loader_check(const char *kernel_path, const char *initrd_path);

/* The same from a buffer already in memory (name is used in messages);
 * the fuzzers enter here. */
int loader_load_buffer(struct vm *vm, const char *name, const uint8_t *buf, size_t len,
		       const char *cmdline, const char *initrd_path);

/* Helpers for loaders. */

/* Read a whole file into a malloc'd buffer. max bounds the size. */
int loader_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len);

/* Ranges of guest RAM a loader has filled, to refuse overlapping segments.
 * loader_claim fails with a message if [gpa, gpa+len) is not RAM or
 * overlaps an earlier claim (what names the thing being placed). */
int loader_claim(struct vm *vm, uint64_t gpa, uint64_t len, const char *what);
void loader_reset_claims(void);

/* The fixed low-memory areas of the Linux boot protocols: GDT, zero page,
 * page tables (LAYOUT_GDT..LAYOUT_PAGE_TABLES_END) and the boot stack. A
 * test-guest loader claims only what its guest kind needs (loader_elf.c). */
int loader_claim_linux_boot(struct vm *vm);

/* The lowest gpa in [lo, hi), a multiple of align (a power of two), such
 * that [gpa, gpa+len) is RAM and overlaps no claim. 0, or -1 (quietly) if
 * there is none. Claims nothing. */
int loader_find_free(struct vm *vm, uint64_t lo, uint64_t hi, uint64_t len, uint64_t align,
		     uint64_t *gpa);

/* Claim len bytes for what: at preferred if that is free (preferred 0:
 * no preference), else the first free place (loader_find_free) in
 * conventional memory [LAYOUT_LOW_FREE, LAYOUT_EBDA), else from 1 MiB up
 * to the MMIO hole. 0 with *gpa set, or -1 after a message naming what. */
int loader_place(struct vm *vm, uint64_t preferred, uint64_t len, uint64_t align,
		 const char *what, uint64_t *gpa);

#endif
