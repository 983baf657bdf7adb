/* Loads an empty IDT and raises an exception: with no handler the CPU
 * double- and then triple-faults, which minivmm must report and stop on.
 *
 * It prints where it will fault and where its last exit to minivmm is: the
 * OUT that ends its line, two instructions before the fault, at a label of
 * its own, so a test can check that the crash dump's "state at the last
 * exit" names that rip (tests/sandbox/19-crash-dump.sh). */
#include "guest.h"

extern const char triplefault_last_exit[], triplefault_fault[];

int guest_main(const char *cmdline)
{
	(void)cmdline;
	guest_printf("triplefault: about to fault at 0x%lx, last exit at 0x%lx",
		     (unsigned long)triplefault_fault, (unsigned long)triplefault_last_exit);
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {0, 0};
	/* The newline goes out from the labelled OUT (a port exit), then the
	 * fault: nothing in between exits to minivmm. */
	__asm__ volatile(".globl triplefault_last_exit\n"
			 "triplefault_last_exit: outb %%al, %%dx\n\t"
			 "lidt %0\n\t"
			 ".globl triplefault_fault\n"
			 "triplefault_fault: int3"
			 :: "m"(idtr), "a"((uint8_t)'\n'), "d"((uint16_t)GUEST_COM1) : "memory");
	guest_puts("triplefault: still alive?\n");
	return 3;
}
