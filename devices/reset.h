/*
 * The chipset's reset ports: System Control Port A (0x92), whose bit 0 is
 * the fast reset, and the Reset Control Register (0xCF9). A reset through
 * either stops the VM the way every guest reboot does (EXIT_OK, "guest
 * rebooted ..."): a fresh VM is the caller's job.
 *
 * 0xCF9 shares the PCI configuration ports 0xCF8-0xCFF, told apart by
 * access size: whoever owns that range hands byte accesses of 0xCF9 to
 * reset_rcr_write / reset_rcr_read.
 */
#ifndef MINIVMM_RESET_H
#define MINIVMM_RESET_H

#include <stdint.h>

struct vm;

#define RESET_RCR_PORT 0xcf9

/* A guest write of v to the Reset Control Register; *rcr holds what reads
 * return (reset_rcr_read). */
void reset_rcr_write(struct vm *vm, uint8_t *rcr, uint8_t v);
uint8_t reset_rcr_read(const uint8_t *rcr);

#endif
