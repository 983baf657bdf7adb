/*
 * An ELF executable held in memory, opened with libelf and checked once
 * (lib/elffile.c), for the kernel loaders (vmm/loader_elf.c: ELF64 test
 * guests and Multiboot ELF32 kernels; vmm/loader_vmlinux.c: Linux). The
 * bytes are untrusted: the header is checked against the class and
 * machine the caller boots, and a segment's file bytes against the image.
 * Messages name the problem, not the file: callers prefix the path.
 */
#ifndef MINIVMM_LIB_ELFFILE_H
#define MINIVMM_LIB_ELFFILE_H

#include <gelf.h>
#include <stddef.h>

struct elffile {
	Elf *elf;
	GElf_Ehdr eh;
	size_t phnum;  /* program headers, at least one */
	size_t size;   /* bytes of the image */
};

/* Open the image buf[0..len) (not copied: it must outlive f) as an
 * executable (ET_EXEC) of class (ELFCLASS32 or ELFCLASS64) for machine
 * (EM_X86_64, EM_386, ...) with program headers. 0, or -1 with a message
 * in err (nothing to close then). */
int elffile_open(struct elffile *f, const void *buf, size_t len, int class, int machine,
		 char *err, size_t errlen);

/* Program header i (< f->phnum) if it is a segment to load: 1 with *ph
 * filled for a PT_LOAD with memory to fill, whose file bytes lie inside
 * the image and are no more than its memory; 0 for anything else (skip
 * it); -1 with a message when it is unreadable or lies outside the file. */
int elffile_segment(const struct elffile *f, size_t i, GElf_Phdr *ph, char *err, size_t errlen);

void elffile_close(struct elffile *f);

#endif
