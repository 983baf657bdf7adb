# ACPI for every guest kind (vmm/acpi.c): an ELF64 and a Multiboot test guest
# each scan 0xf0000-0xfffff for the RSDP as kvm-unit-tests does, check the
# checksums, follow RSDT and XSDT to the FADT and the FADT to the FACS, read
# the PM timer across a busy-wait, then wait wait_ms by it: the run must
# take at least that long in real time (guest-tests/rt/acpi_scan.h).
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests
WAIT_MS=500

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for guest in acpi mb_acpi; do
	start=$(now_ms)
	expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/$guest.elf" --memory 128M \
		--cmdline "wait_ms=$WAIT_MS"
	took=$(( $(now_ms) - start ))
	expect_output "$guest: RSDP at f0000 \(revision 2\), RSDT at [0-9a-f]+, FADT at [0-9a-f]+, FACS at [0-9a-f]+"
	expect_output "$guest: PM timer at port 608 \(32 bits\): [0-9]+ ticks across a busy-wait, waited [0-9]+ ms by it"
	expect_output "$guest: ok"
	[ "$took" -ge "$WAIT_MS" ] ||
		fail "$guest waited $WAIT_MS ms by the PM timer but the run took $took ms: the timer runs fast"
done

# Several vCPUs change the MADT, not where the RSDP is.
expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/acpi.elf" --cpus 2 --cmdline "wait_ms=10"
expect_output 'acpi: ok'
