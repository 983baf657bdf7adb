/* ELF executables in memory (lib/elffile.h). */
#include "lib/elffile.h"

#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char *machine_name(int machine)
{
	switch (machine) {
	case EM_X86_64: return "x86-64";
	case EM_386: return "i386";
	default: return "this machine";
	}
}

int elffile_open(struct elffile *f, const void *buf, size_t len, int class, int machine,
		 char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf is older than this program: %s", elf_errmsg(-1));
		return -1;
	}
	/* elf_memory takes a char * but only reads through an ELF_C_READ
	 * descriptor (libelf(3)). */
	f->elf = elf_memory((char *)buf, len);
	if (!f->elf) {
		snprintf(err, errlen, "not a valid ELF file: %s", elf_errmsg(-1));
		return -1;
	}
	f->size = len;
	if (elf_kind(f->elf) != ELF_K_ELF || !gelf_getehdr(f->elf, &f->eh) ||
	    gelf_getclass(f->elf) != class) {
		snprintf(err, errlen, "not an ELF%d file", class == ELFCLASS64 ? 64 : 32);
		goto fail;
	}
	if (f->eh.e_type != ET_EXEC || f->eh.e_machine != machine) {
		snprintf(err, errlen, "ELF file is not an %s executable (type %u, machine %u)",
			 machine_name(machine), f->eh.e_type, f->eh.e_machine);
		goto fail;
	}
	if (elf_getphdrnum(f->elf, &f->phnum) != 0 || f->phnum == 0) {
		snprintf(err, errlen, "truncated or not a program: no program headers");
		goto fail;
	}
	return 0;
fail:
	elffile_close(f);
	return -1;
}

int elffile_segment(const struct elffile *f, size_t i, GElf_Phdr *ph, char *err, size_t errlen)
{
	if (i > (size_t)INT_MAX || !gelf_getphdr(f->elf, (int)i, ph)) {
		snprintf(err, errlen, "program header %zu is unreadable: %s", i, elf_errmsg(-1));
		return -1;
	}
	if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
		return 0;
	if (ph->p_filesz > ph->p_memsz || ph->p_offset > f->size ||
	    ph->p_filesz > f->size - ph->p_offset) {
		snprintf(err, errlen, "truncated: segment %zu lies outside the file", i);
		return -1;
	}
	return 1;
}

void elffile_close(struct elffile *f)
{
	if (f->elf)
		elf_end(f->elf);
	f->elf = NULL;
}
