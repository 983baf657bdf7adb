# Resets through the chipset's ports (devices/reset.c, devices/i8042.c)
# end the run as a reboot: status 0, stop reason "guest rebooted ...".
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

for via in 92 cf9 cf9full kbd; do
	expect_status 0 timeout -k 10 60 "$MINIVMM" run --kernel "$G/reset.elf" --cmdline "via=$via" \
		--stats "$TMPDIR/stats-$via.json"
	expect_output "reset: via $via"
	echo "$OUT" | grep -q 'still alive' && fail "via=$via: the guest ran past its reset"
	python3 - "$TMPDIR/stats-$via.json" <<'PY' || fail "via=$via: stats say no reboot"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["exit_status"] == 0, s
assert s["stop_reason"].startswith("guest rebooted"), s
PY
done
# 0x02 to 0xCF9 only picks the kind of reset: the guest goes on to 0x06.
expect_status 0 timeout -k 10 60 "$MINIVMM" run --kernel "$G/reset.elf" --cmdline "via=cf9"
expect_output 'reset: 0x02 kept, no reset yet'
