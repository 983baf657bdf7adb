# Bare-metal guests. Every guest-tests/NAME.c is an ELF64 guest
# (build/guest-tests/NAME.elf); every guest-tests/mb_NAME.c a Multiboot
# (ELF32) guest. Both link the runtime in guest-tests/rt/, at 1 MiB
# (rt/guest.ld) unless a guest names another script below.
GUEST_CFLAGS := -ffreestanding -fno-pic -fno-pie -fno-stack-protector -nostdlib \
	-fno-asynchronous-unwind-tables -mno-red-zone -mgeneral-regs-only -O2 -Wall -Wextra -Werror \
	-Iguest-tests/rt
GUEST_LD_SCRIPT = guest-tests/rt/guest.ld
GUEST_LDFLAGS = -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$(GUEST_LD_SCRIPT) \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
GUEST64_SRCS := $(filter-out guest-tests/mb_%.c,$(wildcard guest-tests/*.c))
GUEST32_SRCS := $(wildcard guest-tests/mb_*.c)
GUESTS := $(GUEST64_SRCS:guest-tests/%.c=build/guest-tests/%.elf) \
	$(GUEST32_SRCS:guest-tests/%.c=build/guest-tests/%.elf)
GUEST_RT := guest-tests/rt/runtime.c guest-tests/rt/guest.ld $(wildcard guest-tests/rt/*.h)

guests: $(GUESTS)

# Linked at 0x8000, where real-mode test guests live (low Multiboot images).
build/guest-tests/mb_low.elf: GUEST_LD_SCRIPT = guest-tests/rt/guest_low.ld
build/guest-tests/mb_low.elf: guest-tests/rt/guest_low.ld

build/guest-tests/mb_%.elf: guest-tests/mb_%.c guest-tests/rt/start32.S $(GUEST_RT)
	@mkdir -p $(dir $@)
	$(call say,GUEST32,$@)
	$(Q)gcc -m32 $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ guest-tests/rt/start32.S guest-tests/rt/runtime.c $<

build/guest-tests/%.elf: guest-tests/%.c guest-tests/rt/start64.S $(GUEST_RT)
	@mkdir -p $(dir $@)
	$(call say,GUEST,$@)
	$(Q)gcc -m64 $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ guest-tests/rt/start64.S guest-tests/rt/runtime.c $<
