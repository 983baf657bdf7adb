/*
 * Guest-virtual to guest-physical, by walking the guest's own page tables
 * in RAM as the CPU would, for a crash dump that shows the code at a rip.
 * Access rights and reserved bits are not checked; every table entry is
 * read through gmem_read, so a table outside RAM ends the walk.
 */
#ifndef MINIVMM_PAGEWALK_H
#define MINIVMM_PAGEWALK_H

#include <stdint.h>

#include "vmm/memory.h"

/* The paging state the walk needs (from KVM_GET_SREGS). */
struct pagewalk_regs {
	uint64_t cr0, cr3, cr4, efer;
};

/* Translate linear address la. Returns 0 and *gpa (and *page_left, bytes
 * from gpa to the end of its page, so a caller reading on knows when to
 * translate again), or -1: not mapped, a table outside RAM. */
int pagewalk_translate(const struct guest_mem *m, const struct pagewalk_regs *r, uint64_t la,
		       uint64_t *gpa, uint64_t *page_left);

#endif
