#include "vmm/console_ring.h"

#include <stdio.h>
#include <string.h>

void console_ring_put(struct console_ring *r, const uint8_t *bytes, size_t n)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n; i++) {
		r->buf[r->head] = bytes[i];
		r->head = (r->head + 1) % CONSOLE_RING_BYTES;
	}
	r->total += n;
	pthread_mutex_unlock(&r->lock);
}

size_t console_ring_copy(struct console_ring *r, uint8_t *out, bool *cut)
{
	pthread_mutex_lock(&r->lock);
	size_t n;
	if (r->total <= CONSOLE_RING_BYTES) {
		n = (size_t)r->total;
		memcpy(out, r->buf, n);
		*cut = false;
	} else {
		n = CONSOLE_RING_BYTES;
		size_t first = CONSOLE_RING_BYTES - r->head;
		memcpy(out, r->buf + r->head, first);
		memcpy(out + first, r->buf, r->head);
		*cut = true;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Appends to out without ever writing past outlen (NUL kept). */
struct text {
	char *out;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);
	if (t->cap == 0)
		return;
	if (n > t->cap - 1 - t->len)
		n = t->cap - 1 - t->len;
	memcpy(t->out + t->len, s, n);
	t->len += n;
	t->out[t->len] = '\0';
}

static void text_byte(struct text *t, uint8_t b)
{
	char s[8];
	if (b == '\\')
		snprintf(s, sizeof(s), "\\\\");
	else if ((b >= 0x20 && b < 0x7f) || b == '\t')
		snprintf(s, sizeof(s), "%c", b);
	else
		snprintf(s, sizeof(s), "\\x%02x", b);
	text_add(t, s);
}

size_t console_ring_format(const uint8_t *bytes, size_t n, bool cut, size_t max_lines,
			   char *out, size_t outlen)
{
	struct text t = {out, 0, outlen};
	if (outlen)
		out[0] = '\0';
	if (n == 0 || max_lines == 0)
		return 0;
	/* Walk back from the end to the start of the max_lines-th last line;
	 * a final newline ends the last line rather than starting another. */
	size_t end = n, start = n, lines = 0;
	if (bytes[end - 1] == '\n')
		start = end - 1;
	for (;;) {
		while (start > 0 && bytes[start - 1] != '\n')
			start--;
		lines++;
		if (start == 0 || lines == max_lines)
			break;
		start--; /* onto the newline that ends the line before */
	}
	bool first = true;
	for (size_t i = start; i < end;) {
		size_t j = i;
		while (j < end && bytes[j] != '\n')
			j++;
		/* [i, j) is one line; the CR of a CR LF (or a trailing CR) goes. */
		size_t k = j;
		if (k > i && bytes[k - 1] == '\r')
			k--;
		text_add(&t, "  | ");
		if (first && start == 0 && cut)
			text_add(&t, "...");
		first = false;
		for (size_t x = i; x < k; x++)
			text_byte(&t, bytes[x]);
		text_add(&t, "\n");
		i = j + 1;
	}
	return lines;
}

size_t console_ring_lines(struct console_ring *r, char *out, size_t outlen)
{
	uint8_t copy[CONSOLE_RING_BYTES];
	bool cut;
	size_t n = console_ring_copy(r, copy, &cut);
	return console_ring_format(copy, n, cut, CONSOLE_RING_LINES, out, outlen);
}
