/* Reads QEMU's fw_cfg the way QEMU-style test guests do (selector port
 * 0x510, data port 0x511; QEMU docs/specs/fw_cfg.rst) and checks the
 * signature, the ID, the CPU count, the RAM size and the command line
 * against what the run was given: "cpus=N ram_mib=M" on the command line.
 * Exits 0 when all match, else the number of the failed check. */
#include "guest.h"

#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_ID_DMA 0x2

static uint64_t fw_cfg_read(uint16_t key, void *buf, unsigned len)
{
	outw(FW_CFG_SELECTOR, key);
	uint64_t v = 0;
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = inb(FW_CFG_DATA);
		if (buf)
			((uint8_t *)buf)[i] = b;
		if (i < 8)
			v |= (uint64_t)b << (8 * i);
	}
	return v;
}

int guest_main(const char *cmdline)
{
	char sig[5] = {0};
	fw_cfg_read(FW_CFG_SIGNATURE, sig, 4);
	if (memcmp(sig, "QEMU", 4) != 0) {
		guest_printf("fwcfg: signature %02x %02x %02x %02x\n", sig[0] & 0xff,
			     sig[1] & 0xff, sig[2] & 0xff, sig[3] & 0xff);
		return 1;
	}
	/* No DMA interface: the ID must not claim one. */
	if (fw_cfg_read(FW_CFG_ID, 0, 4) & FW_CFG_ID_DMA)
		return 2;
	unsigned long cpus = (unsigned long)fw_cfg_read(FW_CFG_NB_CPUS, 0, 2);
	unsigned long ram_mib = (unsigned long)(fw_cfg_read(FW_CFG_RAM_SIZE, 0, 8) >> 20);
	guest_printf("fwcfg: signature QEMU, %lu CPUs, %lu MiB RAM\n", cpus, ram_mib);
	if (cpus != guest_cmdline_ulong(cmdline, "cpus", 1))
		return 3;
	if (ram_mib != guest_cmdline_ulong(cmdline, "ram_mib", 0))
		return 4;
	/* The command line item is the one this guest was booted with. */
	char cmd[256];
	unsigned long size = (unsigned long)fw_cfg_read(FW_CFG_CMDLINE_SIZE, 0, 4);
	if (size != strlen(cmdline) + 1 || size > sizeof(cmd))
		return 5;
	fw_cfg_read(FW_CFG_CMDLINE_DATA, cmd, (unsigned)size);
	if (memcmp(cmd, cmdline, size) != 0)
		return 6;
	guest_printf("fwcfg: ok\n");
	return 0;
}
