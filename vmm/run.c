/*
 * minivmm run: create the VM, its devices, load the kernel, run it, report.
 */
#include "devices/device.h"
#include "image/run_image.h"
#include "lib/cli.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vm.h"
#include "lib/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_DEFAULT_MEMORY (256ULL << 20)
#define RUN_MIN_MEMORY (16ULL << 20)
#define RUN_MAX_CPUS 64

/* The host's physical RAM in bytes, 0 if unknown. */
static uint64_t run_host_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* --memory: a size with a suffix (K, M, G, T), or a bare number of MiB as
 * QEMU, kvmtool and scripts/sandbox take it ("512" is 512 MiB). */
static int run_parse_memory(const char *v, uint64_t *out)
{
	if (parse_size(v, out) < 0)
		return -1;
	if (*v && !v[strspn(v, "0123456789")]) {
		if (*out > (UINT64_MAX >> 20))
			return -1;
		*out <<= 20;
	}
	return 0;
}

static int parse_memory(const char *v, uint64_t *out, char *err, size_t errlen)
{
	uint64_t size;
	if (run_parse_memory(v, &size) < 0) {
		snprintf(err, errlen, "'%s' is not a size (examples: 256M, 1G)", v);
		return -1;
	}
	if (size < RUN_MIN_MEMORY || (size & 0xfffff)) {
		snprintf(err, errlen, "'%s': guest memory must be a whole number of MiB, at least 16M", v);
		return -1;
	}
	if (size > (1ULL << 40)) {
		snprintf(err, errlen, "'%s' is more guest memory than minivmm supports (1T)", v);
		return -1;
	}
	/* Guest RAM is mapped lazily, so a size past the host's RAM starts
	 * fine and fails later: the guest pushes the host into swap or the
	 * OOM killer ends minivmm mid-run. Refuse it here, naming both. */
	uint64_t host = run_host_ram();
	if (host && size > host) {
		snprintf(err, errlen, "'%s' is more guest memory than this host has (%llu MiB of "
			 "RAM)", v, (unsigned long long)(host >> 20));
		return -1;
	}
	*out = size;
	return 0;
}

CLI_OPTION(.command = "run", .name = "kernel", .argname = "FILE",
	   .help = "kernel to boot: bzImage, ELF vmlinux, Multiboot, or an ELF64 test guest")
CLI_OPTION(.command = "run", .name = "initrd", .argname = "FILE", .help = "initial ramdisk")
CLI_OPTION(.command = "run", .name = "cmdline", .argname = "STR", .help = "kernel command line")
CLI_OPTION(.command = "run", .name = "memory", .argname = "SIZE",
	   .help = "guest RAM, e.g. 512M or 2G; a bare number is MiB (default 256M; at most the host's RAM)",
	   .kind = CLI_SIZE, .parse = parse_memory)
CLI_OPTION(.command = "run", .name = "cpus", .argname = "N",
	   .help = "number of vCPUs, 1 to 64 (default 1)", .kind = CLI_UINT, .min = 1,
	   .max = RUN_MAX_CPUS)
CLI_OPTION(.command = "run", .name = "stats", .argname = "FILE",
	   .help = "write figures of the run (exits, milestones, fetches) as JSON")

/* SIGINT, SIGTERM and SIGHUP, watched by a thread of their own from the
 * start of run (vm_stop is not async-signal-safe, and every thread must
 * inherit the blocked mask):
 *   setup (image download, VM creation): exit at once with 128 + N; a
 *     stalled server must not hold the user (nothing is started yet, the
 *     blob cache is safe to stop at any point);
 *   running: vm_stop, so the devices are torn down, the report printed
 *     and the guest's changes staged;
 *   stopping (the devices are torn down): vm_interrupt, which hands the
 *     signal to the device busy with a long step (the lazy root's
 *     write-back: a push ends at once, a stage under way is finished
 *     first and no push starts, fs/root.h). */
enum run_phase { RUN_SETUP, RUN_RUNNING, RUN_STOPPING };

static struct {
	pthread_mutex_t lock;
	sigset_t set;
	struct vm *vm;
	enum run_phase phase;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void run_set_phase(enum run_phase phase, struct vm *vm)
{
	pthread_mutex_lock(&watch.lock);
	watch.phase = phase;
	watch.vm = vm;
	pthread_mutex_unlock(&watch.lock);
}

static void *signal_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int sig;
		if (sigwait(&watch.set, &sig) != 0)
			continue;
		if (sig == SIGUSR2) /* our own wake-up at the end of the run */
			return NULL;
		pthread_mutex_lock(&watch.lock);
		switch (watch.phase) {
		case RUN_SETUP:
			log_info("stopped by signal %s during setup (no VM was started)",
				 strsignal(sig));
			_exit(128 + sig);
		case RUN_RUNNING:
			if (vm_is_stopping(watch.vm))
				log_info("already stopping (signal %s)", strsignal(sig));
			else
				vm_stop(watch.vm, 128 + sig, "stopped by signal %s", strsignal(sig));
			pthread_mutex_unlock(&watch.lock);
			break;
		case RUN_STOPPING:
			/* Under watch.lock: the vm is not destroyed meanwhile. */
			if (!watch.vm || !vm_interrupt(watch.vm, sig))
				log_info("signal %s: already stopping", strsignal(sig));
			pthread_mutex_unlock(&watch.lock);
			break;
		}
	}
}

static int run_vm(const struct config *cfg)
{
	const char *kernel = config_get(cfg, "kernel");
	if (!kernel) {
		return cli_usage_error("run", "--kernel FILE (or --image-url URL) is required");
	}
	if (cfg->n_args) {
		return cli_usage_error("run", "unexpected argument '%s'", cfg->args[0]);
	}
	/* The kernel named, checked before anything privileged: a missing
	 * or foreign file is reported as such, not as a missing /dev/kvm. */
	if (loader_check(kernel, config_get(cfg, "initrd")) < 0)
		return EXIT_SETUP;
	uint64_t mem = config_get_uint(cfg, "memory", RUN_DEFAULT_MEMORY);
	int cpus = (int)config_get_uint(cfg, "cpus", 1);

	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return EXIT_SETUP;
	int status = vm_create(vm, cfg, mem, cpus);
	/* From here a signal stops the VM the usual way (vm_run returns at
	 * once if it came before) and everything is torn down. */
	if (status == 0)
		run_set_phase(RUN_RUNNING, vm);
	if (status == 0 && device_create_all(vm) < 0)
		status = EXIT_SETUP;
	if (status == 0 && loader_load(vm, kernel, config_get(cfg, "cmdline"),
				       config_get(cfg, "initrd")) < 0)
		status = EXIT_SETUP;
	if (status == 0 && vm->boot.format && (strcmp(vm->boot.format, "bzimage") == 0 ||
					       strcmp(vm->boot.format, "vmlinux") == 0) &&
	    !vm_host_has_hw_virt())
		log_warn("this KVM has no hardware virtualization (no vmx or svm flag in "
			 "/proc/cpuinfo: a software backend such as kvm_pvm); it runs bare-metal "
			 "guests but a Linux kernel will not boot. Run minivmm inside "
			 "scripts/sandbox, which provides a hardware-assisted KVM");
	uint64_t t0 = clock_now_ns();
	if (status == 0) {
		status = vm_run(vm);
		log_debug("stopped: %s (status %d)", vm->stop_reason, status);
	}
	run_set_phase(RUN_STOPPING, vm);
	uint64_t wall = clock_now_ns() - t0;
	device_stop_all(vm);
	run_set_phase(RUN_STOPPING, NULL); /* the vm goes below */
	/* A device whose stop failed (the lazy root's write-back did not
	 * complete) fails the run, unless it already ends otherwise. */
	if (status == EXIT_OK && vm->stop_failure)
		status = vm->stop_failure;
	const char *stats = config_get(cfg, "stats");
	if (stats && vm->vm_fd >= 0 && vm_write_stats(vm, stats, wall) < 0 && status == 0)
		status = EXIT_FAILURE_IO;
	stats_unregister_all();
	device_destroy_all(vm); /* after --stats, which reads the devices' figures */
	vm_destroy(vm);
	free(vm);
	fflush(stdout);
	return status;
}

/* Can path be written? Opened (created, then removed again if it was
 * not there) at start, so that a long run's figures are not lost at its
 * end. 0, or -1 after a message. */
static int run_check_writable(const char *path)
{
	bool existed = access(path, F_OK) == 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("run: --stats %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	if (!existed)
		unlink(path);
	return 0;
}

/* --image-url URL (image/run_image.h): the image part fetches the kernel,
 * initramfs and root, and runs the VM with a config that names them. */
static int run_main(const struct config *cfg)
{
	/* Block the stop signals before any thread exists, so every thread
	 * inherits the mask and only the watcher receives them. */
	sigemptyset(&watch.set);
	sigaddset(&watch.set, SIGINT);
	sigaddset(&watch.set, SIGTERM);
	sigaddset(&watch.set, SIGHUP);
	sigaddset(&watch.set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &watch.set, NULL);
	run_set_phase(RUN_SETUP, NULL);
	pthread_t sig_thread;
	bool have_sig = pthread_create(&sig_thread, NULL, signal_thread, NULL) == 0;

	struct config image_cfg;
	struct image_run *image;
	const char *stats = config_get(cfg, "stats");
	if (stats && run_check_writable(stats) < 0)
		return EXIT_USAGE;
	int rc = image_run_prepare(cfg, &image_cfg, &image);
	if (rc == 0)
		rc = run_vm(cfg);
	else if (rc == 1) {
		rc = run_vm(&image_cfg);
		image_run_finish(image, &image_cfg);
	}
	if (have_sig) {
		pthread_kill(sig_thread, SIGUSR2);
		pthread_join(sig_thread, NULL);
	}
	return rc;
}

CLI_COMMAND(.name = "run", .usage = "",
	    .summary = "boot a virtual machine",
	    .main = run_main)
