/* Resets the machine the way the command line says, as PC firmware and
 * kernels do: "via=92" (System Control Port A, bit 0 fast reset), "via=cf9"
 * (Reset Control Register, 0x06: hard reset, after 0x02, which only picks
 * the kind), "via=cf9full" (0x0E), "via=kbd" (0xFE, pulse reset, to the
 * 8042's command port). minivmm ends the run as a reboot (status 0). If
 * the guest runs on after the write it says so and exits with 3. */
#include "guest.h"

#define PORT_A 0x92
#define PORT_A_FAST_RESET 0x01
#define PORT_A_A20 0x02
#define RCR 0xcf9
#define RCR_SYS_RST 0x02
#define RCR_HARD_RESET 0x06
#define RCR_FULL_RESET 0x0e
#define I8042_CMD 0x64
#define I8042_PULSE_RESET 0xfe

static const char *arg(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = cmdline; p && *p; p++)
		if ((p == cmdline || p[-1] == ' ') && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return p + klen + 1;
	return "";
}

static int is(const char *v, const char *word)
{
	size_t n = strlen(word);
	return strncmp(v, word, n) == 0 && (v[n] == ' ' || v[n] == '\0');
}

int guest_main(const char *cmdline)
{
	const char *via = arg(cmdline, "via");
	guest_printf("reset: via %s\n", via);
	if (is(via, "92")) {
		uint8_t a = inb(PORT_A);
		if (!(a & PORT_A_A20))
			return 2; /* A20 must read as enabled */
		outb(PORT_A, (uint8_t)(a | PORT_A_FAST_RESET));
	} else if (is(via, "cf9")) {
		outb(RCR, RCR_SYS_RST);
		if (inb(RCR) != RCR_SYS_RST)
			return 4;
		guest_printf("reset: 0x02 kept, no reset yet\n");
		outb(RCR, RCR_HARD_RESET);
	} else if (is(via, "cf9full")) {
		outb(RCR, RCR_FULL_RESET);
	} else if (is(via, "kbd")) {
		outb(I8042_CMD, I8042_PULSE_RESET);
	} else {
		return 5;
	}
	/* The reset takes effect at the write: minivmm stops the vCPU before
	 * it runs one more instruction, so this line must never appear. (No
	 * wait loop: a pause loop under the nested emulator was seen to stall
	 * the sandbox's own kernel.) */
	guest_printf("reset: still alive\n");
	return 3;
}
