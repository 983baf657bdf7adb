/*
 * Command-line registry.
 *
 * Every subcommand ("run", "fetch", "image build", ...) and every option of a
 * subcommand registers itself from the file that implements it, with the
 * CLI_COMMAND and CLI_OPTION macros below. main() knows no command or option
 * by name: adding a device with its own option (say --disk) touches only the
 * device's file.
 *
 * Parsed values land in a struct config: a list of (option, value) pairs in
 * command-line order plus the positional arguments. Code reads them back with
 * config_get (last value wins), config_get_all (repeatable options) and
 * config_flag.
 *
 * Numbers are typed where they are declared: an option with .kind CLI_UINT
 * or CLI_SIZE is parsed and range-checked once, when the command line is
 * read (the error names the option and the value), and its users read the
 * number with config_get_uint, never the string.
 */
#ifndef MINIVMM_CLI_H
#define MINIVMM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of the minivmm process. Even numbers, so that they never
 * collide with the debug-exit port's (V << 1) | 1. See docs/architecture.md. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,        /* bad command line */
	EXIT_SETUP = 4,        /* could not start: no /dev/kvm, bad kernel, ... */
	EXIT_GUEST_CRASH = 6,  /* triple fault, entry failure, unexpected exit */
	EXIT_GUEST_HUNG = 8,   /* every vCPU halted with interrupts off */
	EXIT_GUEST_PANIC = 10, /* the guest kernel reported a panic */
	EXIT_FAILURE_IO = 12,  /* fetch, cache or write-back failure */
};

struct config_entry {
	const char *name;  /* option name without dashes */
	const char *value; /* NULL for flags */
	bool has_num;      /* a CLI_UINT / CLI_SIZE option: num is its value */
	uint64_t num;
};

struct config {
	struct config_entry *entries;
	size_t n_entries, cap_entries;
	const char **args; /* positional arguments */
	size_t n_args, cap_args;
	const char *command;
};

enum cli_kind {
	CLI_TEXT,  /* the string as given (default) */
	CLI_UINT,  /* a decimal integer, digits only, in [min, max] */
	CLI_SIZE,  /* parse_size's "4096", "256M", "1G", in [min, max] */
};

struct cli_option {
	const char *command; /* which command the option belongs to, e.g. "run" */
	const char *name;    /* long option name, without "--" */
	const char *argname; /* metavariable shown in help; NULL for a flag */
	const char *help;
	/* Optional check run at parse time; on failure write a message into
	 * err and return -1. */
	int (*validate)(const char *value, char *err, size_t errlen);
	char short_name;     /* optional one-letter alias, e.g. 'o' for -o */
	enum cli_kind kind;
	uint64_t min, max;   /* bounds of a number; max 0 means none */
	/* A number with a syntax of its own (CLI_UINT/CLI_SIZE): replaces
	 * the kind's parser and bounds; on failure writes why into err. */
	int (*parse)(const char *value, uint64_t *out, char *err, size_t errlen);
};

struct cli_command {
	const char *name;    /* "run", or two words: "image build" */
	const char *usage;   /* positional part of the synopsis, may be "" */
	const char *summary; /* one line for minivmm --help */
	int (*main)(const struct config *cfg);
};

void cli_register_command(const struct cli_command *cmd);
void cli_register_option(const struct cli_option *opt);

#define CLI_CONCAT_(a, b) a##b
#define CLI_CONCAT(a, b) CLI_CONCAT_(a, b)

#define CLI_COMMAND(...)                                                        \
	static const struct cli_command CLI_CONCAT(cli_cmd_, __LINE__) = {__VA_ARGS__}; \
	__attribute__((constructor)) static void CLI_CONCAT(cli_cmd_reg_, __LINE__)(void) \
	{ cli_register_command(&CLI_CONCAT(cli_cmd_, __LINE__)); }

#define CLI_OPTION(...)                                                         \
	static const struct cli_option CLI_CONCAT(cli_opt_, __LINE__) = {__VA_ARGS__}; \
	__attribute__((constructor)) static void CLI_CONCAT(cli_opt_reg_, __LINE__)(void) \
	{ cli_register_option(&CLI_CONCAT(cli_opt_, __LINE__)); }

/* Entry point used by main(): dispatches argv to a registered command. */
int cli_main(int argc, char **argv);

/* Parse argv (after the command words) into cfg. Returns 0, or EXIT_USAGE
 * after printing a message; sets *help_requested for --help. */
int cli_parse(const struct cli_command *cmd, int argc, char **argv,
	      struct config *cfg, bool *help_requested);
/* A bad command line, in one line: "minivmm: error: COMMAND: WHAT (see
 * minivmm COMMAND --help)". Returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void config_free(struct config *cfg);
/* dst = src's entries and arguments (the strings stay src's), to add to.
 * 0, or -1 out of memory. Free dst with config_free. */
int config_copy(struct config *dst, const struct config *src);
/* Add an entry; a value for a numeric option (of cfg->command, or of any
 * command while that is unset) is parsed as on the command line. 0, or -1
 * out of memory or for a bad number. */
int config_add(struct config *cfg, const char *name, const char *value);

const char *config_get(const struct config *cfg, const char *name);
size_t config_get_all(const struct config *cfg, const char *name,
		      const char **out, size_t max);
bool config_flag(const struct config *cfg, const char *name);
/* The number given to a CLI_UINT / CLI_SIZE option (last wins), or dflt
 * when absent. Aborts if name was not declared numeric: a build mistake. */
uint64_t config_get_uint(const struct config *cfg, const char *name, uint64_t dflt);

/* "256M", "1G", "4096", "2k": bytes. Returns -1 on a malformed or
 * overflowing value. Suffixes are binary (K = 1024). */
int parse_size(const char *s, uint64_t *out);

#define MINIVMM_VERSION "0.1.0"

#endif
