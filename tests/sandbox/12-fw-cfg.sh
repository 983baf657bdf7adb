# QEMU's fw_cfg as a QEMU-style test guest reads it (devices/fw_cfg.c):
# signature, ID, CPU count, RAM size and command line match the run's.
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/fwcfg.elf" --memory 128M \
	--cmdline "cpus=1 ram_mib=128"
expect_output 'fwcfg: signature QEMU, 1 CPUs, 128 MiB RAM'
expect_output 'fwcfg: ok'

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/fwcfg.elf" --memory 320M --cpus 3 \
	--cmdline "cpus=3 ram_mib=320"
expect_output 'fwcfg: signature QEMU, 3 CPUs, 320 MiB RAM'
expect_output 'fwcfg: ok'

# The guest's checks can fail: told other figures than the run's, it says so
# (check 3: the CPU count; (3 << 1) | 1 = 7).
expect_status 7 timeout -k 10 60 "$MINIVMM" run --kernel "$G/fwcfg.elf" --memory 128M \
	--cmdline "cpus=2 ram_mib=128"
