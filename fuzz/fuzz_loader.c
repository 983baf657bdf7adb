/*
 * libFuzzer target: every kernel loader (bzImage, vmlinux, Multiboot,
 * ELF64) on arbitrary bytes, placed into 64 MiB of guest RAM. Loaders must
 * refuse what they cannot place and never touch memory outside RAM: ASan
 * checks the loaders' own buffers, and guest RAM sits between guard pages
 * (vmm/memory.c), so a write past its end faults at once.
 *
 * The input also chooses the command line (a leading '#', up to a NUL) and
 * whether an initrd is given (last byte 'I'): with one, the Multiboot
 * information block gains its module list and bzImage its ramdisk fields,
 * so every part of the boot information the loaders write is exercised.
 * Seeds in tests/fuzz-regress/fuzz_loader/ (an ELF32 Multiboot kernel, one
 * linked low at 0x8000 whose information block must go around it, an
 * a.out-kludge one, an ELF64 one) get the fuzzer past the magic numbers.
 */
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_RAM (64ULL << 20)
#define FUZZ_INITRD_SIZE 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The initrd: an unlinked temporary file, named through /proc/self/fd so
 * that nothing is left behind however the fuzzer exits. */
static const char *initrd_file(void)
{
	static char path[64];
	if (path[0])
		return path;
	char tmpl[] = "/tmp/fuzz-loader-initrd.XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		abort();
	unlink(tmpl);
	uint8_t buf[FUZZ_INITRD_SIZE];
	for (int i = 0; i < FUZZ_INITRD_SIZE; i++)
		buf[i] = (uint8_t)i;
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm *vm;
	if (!vm) {
		log_set_quiet(1);
		vm = calloc(1, sizeof(*vm));
		if (!vm || gmem_init(&vm->mem, FUZZ_RAM) < 0)
			abort();
		vm->n_vcpus = 1;
		initrd_file();
		/* The loaders register from constructors: if the build left
		 * them out, every input would be refused and the campaign
		 * would measure nothing. A minimal Multiboot kernel must load. */
		static const uint32_t mb[] = {0x1BADB002U, 0x10003U, (uint32_t)-(0x1BADB002U + 0x10003U),
					      0x100000, 0x100000, 0x100040, 0x101000, 0x100020,
					      0xfdebf4, 0, 0, 0, 0, 0, 0, 0};
		if (loader_load_buffer(vm, "self-check", (const uint8_t *)mb, sizeof(mb), "", NULL) != 0) {
			fprintf(stderr, "fuzz_loader: a minimal Multiboot kernel does not load: "
					"are the loaders linked in (mk/fuzz.mk)?\n");
			abort();
		}
	}
	memset(&vm->boot, 0, sizeof(vm->boot));
	/* The command line is part of the input too: its first bytes, up to
	 * a NUL, when there is one. */
	char cmdline[256] = "console=ttyS0";
	const uint8_t *nul = memchr(data, 0, size < 255 ? size : 255);
	if (nul && size > 1 && data[0] == '#') {
		memcpy(cmdline, data + 1, (size_t)(nul - data) - 1);
		cmdline[nul - data - 1] = '\0';
	}
	const char *initrd = size > 0 && data[size - 1] == 'I' ? initrd_file() : NULL;
	loader_load_buffer(vm, "fuzz-input", data, size, cmdline, initrd);
	return 0;
}
