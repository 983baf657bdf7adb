/*
 * The guest-physical address map (x86-64). Everything placed at a fixed
 * address by minivmm is named here, so that loaders and devices agree.
 *
 *   0x00000500  GDT (vmm/vcpu.c writes it for every guest)
 *   0x00007000  zero page (boot_params)    (boot.rst; Linux only)
 *   0x00009000  page tables: PML4, PDPT, 4 PDs identity-mapping 4 GiB
 *                                          (64-bit guests only)
 *   0x00020000  kernel command line (up to 64 KiB; Linux, and ELF64 where free)
 *   0x0008f000  initial stack top for ELF64 guests where free (grows down)
 *   0x0009fc00  end of conventional RAM (EBDA follows)
 *   0x000e0000  ACPI tables
 *   0x000f0000  RSDP, where BIOS-era scanners look (ACPI 6.4 5.2.5.1)
 *   0x000ffff0  reset stub (vmm/boot_linux.c)
 *   0x00100000  kernel load address (1 MiB)
 *   [RAM ... min(ram, MMIO_HOLE_START)]
 *   0xd0000000  MMIO for devices (virtio-mmio windows, allocated upward)
 *   0xfec00000  IOAPIC, 0xfee00000 LAPIC
 *   0x100000000 RAM above 4 GiB, if --memory exceeds the hole start
 *
 * A Multiboot guest gets only the GDT at a fixed place: it runs with paging
 * off and its information block, memory map, command line and modules go
 * wherever its image is not (vmm/loader_elf.c, loader_place). Neither test
 * guest kind gets the Linux zero page.
 */
#ifndef MINIVMM_LAYOUT_H
#define MINIVMM_LAYOUT_H

#define LAYOUT_GDT 0x500ULL
/* Room for vcpu.c's GDT (six descriptors today). */
#define LAYOUT_GDT_END 0x600ULL
/* Below this: real-mode IVT, BIOS data area, our GDT. Nothing of a
 * Multiboot guest's loader goes there. */
#define LAYOUT_LOW_FREE 0x1000ULL
#define LAYOUT_ZERO_PAGE 0x7000ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* four pages: 0xb000-0xefff */
#define LAYOUT_PAGE_TABLES_END 0xf000ULL
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_STACK_BOTTOM 0x80000ULL
#define LAYOUT_STACK_TOP 0x8f000ULL
#define LAYOUT_EBDA 0x9fc00ULL
#define LAYOUT_ACPI 0xe0000ULL
/* The RSDP: in the BIOS read-only area 0xe0000-0xfffff that OSPM scans on
 * 16-byte boundaries (ACPI 6.4, 5.2.5.1), and inside 0xf0000-0xfffff, the
 * only part SeaBIOS uses and small test guests (kvm-unit-tests) scan. The
 * tables proper lie in [LAYOUT_ACPI, LAYOUT_RSDP). */
#define LAYOUT_RSDP 0xf0000ULL
#define LAYOUT_ACPI_END 0x100000ULL
/* Where a CPU reset (and Linux's "BIOS" reboot method) starts executing:
 * F000:FFF0 (Intel SDM vol. 3A, 9.1.4). The last 16 bytes of the ACPI area. */
#define LAYOUT_RESET_VECTOR 0xffff0ULL
#define LAYOUT_HIGH_MEMORY 0x100000ULL

#define LAYOUT_MMIO_HOLE_START 0xc0000000ULL
#define LAYOUT_MMIO_DEVICES 0xd0000000ULL
#define LAYOUT_MMIO_DEVICES_END 0xfec00000ULL
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL
#define LAYOUT_4G 0x100000000ULL

/* The identity-mapped KVM TSS (KVM_SET_TSS_ADDR needs three pages) sits
 * just below the IOAPIC, inside the hole, where no RAM is. */
#define LAYOUT_KVM_TSS 0xfeffd000ULL
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL

#endif
