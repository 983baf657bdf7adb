/*
 * 8250/16550A UART at COM1 (port 0x3f8, IRQ 4): the guest's console.
 *
 * Output goes to the console watcher (vmm/console.h) and stdout; input is
 * read from stdin by a thread of our own. Register map and interrupt
 * priorities: PC16550D datasheet, "Register descriptions" and table 4
 * ("Interrupt control functions"). The transmitter is infinitely fast:
 * a byte written to THR is sent at once and THR is empty again, so the
 * THRE interrupt fires right after each write that has it enabled.
 *
 * Input waits in a host-side queue and becomes visible to the guest (LSR.DR)
 * only while it has the receive interrupt enabled. Linux enables it when a
 * process opens the tty, after draining the FIFO; bytes typed (or piped)
 * before that would otherwise be thrown away by the drain.
 *
 * When stdin is a terminal it is put in raw mode, so keys reach the guest,
 * and restored on every way out (normal stop, atexit, fatal signals).
 * Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A, as in QEMU. When stdin is a
 * pipe or a file its bytes go to the guest unchanged, and its end does not
 * stop the VM.
 */
#include "devices/device.h"
#include "vmm/console.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NPORTS 8

/* Register offsets (DLAB = LCR bit 7 selects the divisor latch at 0/1). */
#define UART_RBR_THR 0 /* receive buffer / transmit holding */
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01  /* receive data available */
#define UART_IER_THRI 0x02 /* transmit holding register empty */
#define UART_IER_MASK 0x0f
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_ID_MASK 0x0e
#define UART_IIR_FIFO_ENABLED 0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f
#define UART_LSR_DR 0x01   /* data ready */
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

/* Console escapes, as in QEMU's -serial mon:stdio. */
#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */
#define CONSOLE_QUIT 'x'

#define SERIAL_RX_QUEUE 4096
#define SERIAL_THREAD_STACK (1024 * 1024)

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_cond_t rx_space;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_ipending;
	int irq_level;
	/* Input queue, filled by the input thread. */
	uint8_t rx[SERIAL_RX_QUEUE];
	size_t rx_head, rx_len;
	/* Input thread. */
	pthread_t thread;
	bool have_thread, stopping, detached;
	bool on_bus;
	int wake[2];
	bool interactive; /* stdin is our terminal: raw mode and escapes */
};

/* ---- terminal ---- */

/* The terminal is the process's, not an instance's: a fatal signal's
 * handler and atexit restore it, and neither can be handed an instance. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_is_raw;

static void tty_restore(void)
{
	if (tty_is_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_is_raw = 0;
	}
}

static void fatal_signal(int sig)
{
	tty_restore(); /* tcsetattr is async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool tty_make_raw(void)
{
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
		return false; /* not ours to change (or we are in the background) */
	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return false;
	struct termios raw = saved_tty;
	/* Keys go to the guest as typed: no echo, no line editing, no
	 * signals from ^C/^Z, no CR/NL mapping on input. Output processing
	 * stays on, so that minivmm's own messages keep their line starts. */
	raw.c_iflag &= ~(unsigned)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(unsigned)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	static bool hooks;
	if (!hooks) {
		hooks = true;
		atexit(tty_restore);
		static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT};
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], fatal_signal);
	}
	tty_is_raw = 1;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
		tty_is_raw = 0;
		return false;
	}
	return true;
}

/* ---- the UART ---- */

/* Is a received byte visible to the guest? See the header comment. */
static bool rx_ready(const struct serial *s)
{
	return s->rx_len > 0 && (s->ier & UART_IER_RDI);
}

static uint8_t iir_now(const struct serial *s)
{
	uint8_t id = UART_IIR_NO_INT;
	if (rx_ready(s))
		id = UART_IIR_RDI;
	else if ((s->ier & UART_IER_THRI) && s->thr_ipending)
		id = UART_IIR_THRI;
	return id | ((s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO_ENABLED : 0);
}

/* The line follows "an interrupt is pending", as on the chip; the
 * IOAPIC pin is edge-triggered, so a rise is what delivers it. OUT2 gates
 * the line on PC boards. */
static void update_irq(struct serial *s)
{
	int level = (iir_now(s) & UART_IIR_NO_INT) == 0 && (s->mcr & UART_MCR_OUT2);
	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->vm, SERIAL_COM1_IRQ, level);
	}
}

static uint8_t rx_pop(struct serial *s)
{
	if (!rx_ready(s))
		return 0;
	uint8_t v = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_QUEUE;
	s->rx_len--;
	pthread_cond_signal(&s->rx_space);
	return v;
}

static uint8_t msr_now(const struct serial *s)
{
	if (!(s->mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	/* Loopback (datasheet, MCR bit 4): the modem outputs drive the inputs. */
	uint8_t v = 0;
	if (s->mcr & UART_MCR_RTS) v |= UART_MSR_CTS;
	if (s->mcr & UART_MCR_DTR) v |= UART_MSR_DSR;
	if (s->mcr & UART_MCR_OUT1) v |= UART_MSR_RI;
	if (s->mcr & UART_MCR_OUT2) v |= UART_MSR_DCD;
	return v;
}

static void serial_write(struct serial *s, uint64_t offset, uint8_t v)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	switch (offset) {
	case UART_RBR_THR:
		if (dlab) {
			s->dll = v;
			break;
		}
		if (!(s->mcr & UART_MCR_LOOP))
			console_output(s->vm, v);
		s->thr_ipending = true; /* sent at once: THR is empty again */
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		if ((v ^ s->ier) & UART_IER_THRI)
			s->thr_ipending = v & UART_IER_THRI;
		s->ier = v & UART_IER_MASK;
		break;
	case UART_IIR_FCR:
		/* Clearing the receive FIFO drops only what the guest could see;
		 * the host queue waits for the receive interrupt anyway. */
		s->fcr = v & UART_FCR_ENABLE;
		break;
	case UART_LCR: s->lcr = v; break;
	case UART_MCR: s->mcr = v & UART_MCR_MASK; break;
	case UART_SCR: s->scr = v; break;
	default: break;
	}
}

static uint8_t serial_read(struct serial *s, uint64_t offset)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	switch (offset) {
	case UART_RBR_THR: return dlab ? s->dll : rx_pop(s);
	case UART_IER: return dlab ? s->dlm : s->ier;
	case UART_IIR_FCR: {
		uint8_t v = iir_now(s);
		/* Reading IIR acknowledges a THRE interrupt (datasheet table 4). */
		if ((v & UART_IIR_ID_MASK) == UART_IIR_THRI)
			s->thr_ipending = false;
		return v;
	}
	case UART_LCR: return s->lcr;
	case UART_MCR: return s->mcr;
	case UART_LSR: return UART_LSR_THRE | UART_LSR_TEMT | (rx_ready(s) ? UART_LSR_DR : 0);
	case UART_MSR: return msr_now(s);
	case UART_SCR: return s->scr;
	default: return 0;
	}
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		      bool is_write)
{
	struct serial *s = opaque;
	(void)len;
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, data[0]);
	else
		data[0] = serial_read(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* ---- input ---- */

/* Queue one byte for the guest; waits while the queue is full. */
static bool rx_push(struct serial *s, uint8_t b)
{
	pthread_mutex_lock(&s->lock);
	while (s->rx_len == SERIAL_RX_QUEUE && !s->stopping)
		pthread_cond_wait(&s->rx_space, &s->lock);
	bool ok = !s->stopping;
	if (ok) {
		s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_QUEUE] = b;
		s->rx_len++;
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void *serial_input_thread(void *arg)
{
	struct serial *s = arg;
	bool escape = false;
	for (;;) {
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				      {.fd = s->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		uint8_t buf[256];
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest just gets no more */
		for (ssize_t i = 0; i < n; i++) {
			uint8_t b = buf[i];
			if (s->interactive && escape) {
				escape = false;
				if (b == CONSOLE_QUIT) {
					vm_stop(s->vm, EXIT_OK, "quit from the console (Ctrl-A x)");
					return NULL;
				}
				if (b != CONSOLE_ESCAPE)
					continue; /* unknown escape: dropped */
			} else if (s->interactive && b == CONSOLE_ESCAPE) {
				escape = true;
				continue;
			}
			if (!rx_push(s, b))
				return NULL;
		}
	}
	return NULL;
}

static int serial_start_input(struct serial *s)
{
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		log_error("serial: pipe: %s", strerror(errno));
		return -1;
	}
	s->interactive = tty_make_raw();
	pthread_attr_t attr; /* small stack: see vcpu_start */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SERIAL_THREAD_STACK);
	int rc = pthread_create(&s->thread, &attr, serial_input_thread, s);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		tty_restore();
		log_error("serial: cannot start the input thread: %s", strerror(rc));
		return -1;
	}
	s->have_thread = true;
	return 0;
}

static void serial_stop(void *instance)
{
	struct serial *s = instance;
	if (s->have_thread) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->rx_space);
		pthread_mutex_unlock(&s->lock);
		if (write(s->wake[1], "x", 1) < 0) {
			/* the thread may wait forever; detach instead of joining */
			pthread_detach(s->thread);
			s->detached = true;
		} else {
			pthread_join(s->thread, NULL);
		}
		s->have_thread = false;
	}
	for (int i = 0; i < 2; i++)
		if (s->wake[i] >= 0)
			close(s->wake[i]);
	s->wake[0] = s->wake[1] = -1;
	tty_restore();
	console_flush();
}

static void serial_destroy(void *instance)
{
	struct serial *s = instance;
	serial_stop(s); /* no-op after a stop; the cleanup of a failed create */
	if (s->on_bus)
		bus_unregister(&s->vm->pio, SERIAL_COM1_BASE);
	/* A detached input thread still uses the struct: leave it then. */
	if (s->detached)
		return;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->rx_space);
	free(s);
}

static const struct device_ops serial_ops;

static int serial_create(struct vm *vm)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->vm = vm;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->rx_space, NULL);
	if (bus_register(&vm->pio, SERIAL_COM1_BASE, SERIAL_NPORTS, serial_io, s, "serial") < 0)
		goto fail;
	s->on_bus = true;
	/* No stdin at all (closed): output only. */
	if (fcntl(STDIN_FILENO, F_GETFL) >= 0 && serial_start_input(s) < 0)
		goto fail;
	if (device_add(vm, &serial_ops, s) < 0)
		goto fail;
	return 0;
fail:
	serial_destroy(s);
	return -1;
}

static const struct device_ops serial_ops = {
	.name = "serial",
	.order = DEVICE_ORDER_PLATFORM,
	.create = serial_create,
	.stop = serial_stop,
	.destroy = serial_destroy,
};
DEVICE_REGISTER(serial_ops)
