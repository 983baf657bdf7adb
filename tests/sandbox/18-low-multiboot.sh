# A Multiboot guest linked at 0x8000 (guest-tests/rt/guest_low.ld), as
# real-mode test guests are: it loads, finds its information block, memory
# map and command line outside its image, the memory size it was given and
# the ACPI tables (guest-tests/mb_low.c).
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/mb_low.elf" --memory 128M \
	--cmdline "expect_upper_kib=130048 low-args"
expect_output 'mb_low: image at 8000-[0-9a-f]+, information at [0-9a-f]+, mem_lower 639 KiB, mem_upper 130048 KiB, cmdline "expect_upper_kib=130048 low-args"'
expect_output 'mb_low: RSDP at f0000'
expect_output 'mb_low: ok'

# With an initrd, module 0 goes above 1 MiB, out of the image's way too.
head -c 5000 /dev/urandom > "$TMPDIR/initrd"
expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/mb_low.elf" --memory 64M \
	--initrd "$TMPDIR/initrd" --cmdline "expect_upper_kib=64512"
expect_output 'mb_low: ok'

# The guest's checks can fail: told another memory size it says so
# (check 25; (25 << 1) | 1 = 51).
expect_status 51 timeout -k 10 60 "$MINIVMM" run --kernel "$G/mb_low.elf" --memory 128M \
	--cmdline "expect_upper_kib=1"
expect_output 'mb_low: image at 8000-'
