/* Probes PCI configuration mechanism #1 the way Linux does
 * (arch/x86/pci/direct.c, pci_check_type1) and scans bus 0: minivmm has a
 * host bridge there and nothing else. Also checks that the Reset Control
 * Register at 0xCF9, inside the same ports, does not disturb the address
 * register. Exits 0 when all holds, else the number of the failed check. */
#include "guest.h"

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA 0xcfc
#define RCR 0xcf9
#define RCR_SYS_RST 0x02 /* picks the kind of reset; resets nothing */
#define ENABLE 0x80000000U
#define CLASS_BRIDGE_HOST 0x0600

static uint32_t cfg_read32(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	outl(CONFIG_ADDRESS, ENABLE | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	return inl(CONFIG_DATA);
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	outb(CONFIG_ADDRESS + 3, 0x01);
	outl(CONFIG_ADDRESS, ENABLE);
	if (inl(CONFIG_ADDRESS) != ENABLE)
		return 1; /* no mechanism #1 */
	uint32_t id = cfg_read32(0, 0, 0, 0x00);
	uint32_t class = cfg_read32(0, 0, 0, 0x08) >> 16;
	guest_printf("pci: 00:00.0 %04x:%04x class %04x\n", id & 0xffff, id >> 16, class);
	if (class != CLASS_BRIDGE_HOST || (id & 0xffff) == 0xffff)
		return 2;
	unsigned found = 0;
	for (unsigned bus = 0; bus < 4; bus++)
		for (unsigned dev = 0; dev < 32; dev++)
			for (unsigned fn = 0; fn < 8; fn++)
				if ((cfg_read32(bus, dev, fn, 0) & 0xffff) != 0xffff)
					found++;
	guest_printf("pci: %u functions on buses 0-3\n", found);
	if (found != 1)
		return 3;
	/* 0xCF9 by byte: the reset register, not a byte of the address. */
	outl(CONFIG_ADDRESS, ENABLE | 0x08);
	outb(RCR, RCR_SYS_RST);
	if (inl(CONFIG_ADDRESS) != (ENABLE | 0x08) || inb(RCR) != RCR_SYS_RST)
		return 4;
	if ((inl(CONFIG_DATA) >> 16) != CLASS_BRIDGE_HOST)
		return 5;
	guest_printf("pci: ok\n");
	return 0;
}
