#include "vmm/console.h"
#include "vmm/console_ring.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int validate_marker(const char *value, char *err, size_t errlen)
{
	if (!*value || strlen(value) > 256) {
		snprintf(err, errlen, "the marker must be 1 to 256 bytes long");
		return -1;
	}
	return 0;
}

CLI_OPTION(.command = "run", .name = "ready-marker", .argname = "STR",
	   .help = "record when STR first appears on the console (the 'ready' milestone)",
	   .validate = validate_marker)

/* The last bytes of output, enough to hold the longest marker: after each
 * byte we ask whether the tail ends with a marker. Markers are short, so a
 * memcmp per byte costs nothing next to the exit that brought the byte. */
#define CONSOLE_TAIL 256

static char tail[CONSOLE_TAIL];
static size_t tail_len;
static const char *ready_marker;
static size_t ready_len;
static int ready_initialized;

/* The first line of every Linux panic (kernel/panic.c). Watching for it
 * works with any kernel and needs no guest driver; pvpanic would need the
 * stock kernel's pvpanic-mmio module loaded first, and panic=-1 reboots
 * the guest (an EXIT_OK stop) right after printing it. The VM stops at the
 * end of that line, so the reason is on the console and in the report. */
#define CONSOLE_PANIC_MARKER "Kernel panic - not syncing"
#define CONSOLE_PANIC_REASON 100

static bool panic_seen;
static char panic_reason[CONSOLE_PANIC_REASON];
static size_t panic_len;

/* What a crash dump shows as the last console output. */
static struct console_ring last_output = CONSOLE_RING_INIT;

static bool tail_ends_with(const char *s, size_t len)
{
	return len && len <= tail_len && memcmp(tail + tail_len - len, s, len) == 0;
}

void console_output(struct vm *vm, uint8_t byte)
{
	vm_milestone(vm, MILESTONE_FIRST_OUTPUT);
	if (!ready_initialized) {
		ready_initialized = 1;
		ready_marker = vm->cfg ? config_get(vm->cfg, "ready-marker") : NULL;
		ready_len = ready_marker ? strlen(ready_marker) : 0;
		if (ready_len > CONSOLE_TAIL)
			ready_len = 0; /* validated at parse time; never true */
	}
	if (tail_len == CONSOLE_TAIL) {
		memmove(tail, tail + 1, CONSOLE_TAIL - 1);
		tail_len--;
	}
	tail[tail_len++] = (char)byte;
	console_ring_put(&last_output, &byte, 1);
	if (tail_ends_with(CONSOLE_INIT_MARKER, sizeof(CONSOLE_INIT_MARKER) - 1))
		vm_milestone(vm, MILESTONE_INIT);
	if (tail_ends_with(ready_marker, ready_len))
		vm_milestone(vm, MILESTONE_READY);
	if (panic_seen) {
		if (byte == '\n' || byte == '\r' || panic_len == CONSOLE_PANIC_REASON - 1) {
			panic_seen = false;
			fflush(stdout);
			log_error("the guest kernel panicked%s", panic_reason);
			vm_stop(vm, EXIT_GUEST_PANIC, "guest kernel panic%s", panic_reason);
		} else {
			panic_reason[panic_len++] = (char)byte;
		}
	} else if (tail_ends_with(CONSOLE_PANIC_MARKER, sizeof(CONSOLE_PANIC_MARKER) - 1)) {
		panic_seen = true;
		panic_len = 0;
		memset(panic_reason, 0, sizeof(panic_reason));
	}
	/* A terminal sees every byte at once (prompts have no newline); a
	 * pipe or file gets whole lines. */
	static int stdout_tty = -1;
	if (stdout_tty < 0)
		stdout_tty = isatty(STDOUT_FILENO);
	putc(byte, stdout);
	if (byte == '\n' || stdout_tty)
		fflush(stdout);
}

void console_flush(void)
{
	fflush(stdout);
}

size_t console_last_lines(char *out, size_t outlen)
{
	return console_ring_lines(&last_output, out, outlen);
}
