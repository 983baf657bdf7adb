/* Reports the CPUID feature bits minivmm sets itself and checks the
 * TSC-deadline timer bit (CPUID.01H:ECX[24]) against "tsc_deadline=0|1" on
 * the command line: the host's KVM_CAP_TSC_DEADLINE_TIMER, which the
 * sandbox test reads. Exits 0 when it matches, else 2. */
#include "guest.h"

#define CPUID_FEATURES 0x1
#define ECX_TSC_DEADLINE (1U << 24)
#define ECX_HYPERVISOR (1U << 31)

int guest_main(const char *cmdline)
{
	uint32_t a = CPUID_FEATURES, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	unsigned tsc_deadline = (c & ECX_TSC_DEADLINE) != 0;
	guest_printf("cpuid: tsc_deadline=%u hypervisor=%u\n", tsc_deadline,
		     (c & ECX_HYPERVISOR) != 0);
	if (!(c & ECX_HYPERVISOR))
		return 1;
	if (tsc_deadline != guest_cmdline_ulong(cmdline, "tsc_deadline", 1))
		return 2;
	return 0;
}
