#include "lib/cli.h"
#include "lib/version.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_COMMANDS 64
#define CLI_MAX_OPTIONS 256

static const struct cli_command *commands[CLI_MAX_COMMANDS];
static size_t n_commands;
static const struct cli_option *options[CLI_MAX_OPTIONS];
static size_t n_options;

void cli_register_command(const struct cli_command *cmd)
{
	if (n_commands == CLI_MAX_COMMANDS)
		abort(); /* a build-time mistake, not a user error */
	commands[n_commands++] = cmd;
}

void cli_register_option(const struct cli_option *opt)
{
	if (n_options == CLI_MAX_OPTIONS)
		abort();
	options[n_options++] = opt;
}

static int cmp_commands(const void *a, const void *b)
{
	const struct cli_command *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int cmp_options(const void *a, const void *b)
{
	const struct cli_option *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static const struct cli_option *find_option(const char *command, const char *name, size_t len)
{
	for (size_t i = 0; i < n_options; i++) {
		const struct cli_option *o = options[i];
		if (strcmp(o->command, command) == 0 && strlen(o->name) == len &&
		    strncmp(o->name, name, len) == 0)
			return o;
	}
	return NULL;
}

static const struct cli_option *find_short_option(const char *command, char letter)
{
	for (size_t i = 0; i < n_options; i++)
		if (options[i]->short_name == letter && strcmp(options[i]->command, command) == 0)
			return options[i];
	return NULL;
}

/* The numeric option called name: of command, or of any command if NULL. */
static const struct cli_option *find_numeric(const char *command, const char *name)
{
	for (size_t i = 0; i < n_options; i++) {
		const struct cli_option *o = options[i];
		if (o->kind != CLI_TEXT && strcmp(o->name, name) == 0 &&
		    (!command || strcmp(o->command, command) == 0))
			return o;
	}
	return NULL;
}

/* The one parser of numeric option values. 0, or -1 with why in err. */
static int option_parse_num(const struct cli_option *o, const char *v, uint64_t *out,
			    char *err, size_t errlen)
{
	if (o->parse)
		return o->parse(v, out, err, errlen);
	if (o->kind == CLI_SIZE) {
		if (parse_size(v, out) < 0) {
			snprintf(err, errlen, "'%s' is not a size (examples: 4096, 256M, 1G)", v);
			return -1;
		}
	} else {
		char *end;
		errno = 0;
		unsigned long long n = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
		if (!(*v >= '0' && *v <= '9') || errno || *end) {
			snprintf(err, errlen, "'%s' is not a non-negative integer", v);
			return -1;
		}
		*out = n;
	}
	if (*out < o->min || (o->max && *out > o->max)) {
		if (o->max)
			snprintf(err, errlen, "'%s' is not a number from %" PRIu64 " to %" PRIu64, v, o->min,
				 o->max);
		else
			snprintf(err, errlen, "'%s' is not a number of at least %" PRIu64, v, o->min);
		return -1;
	}
	return 0;
}

static int config_append(struct config *cfg, const char *name, const char *value,
			 bool has_num, uint64_t num)
{
	if (cfg->n_entries == cfg->cap_entries) {
		size_t cap = cfg->cap_entries ? cfg->cap_entries * 2 : 16;
		void *p = realloc(cfg->entries, cap * sizeof(*cfg->entries));
		if (!p)
			return -1;
		cfg->entries = p;
		cfg->cap_entries = cap;
	}
	cfg->entries[cfg->n_entries++] = (struct config_entry){name, value, has_num, num};
	return 0;
}

int config_add(struct config *cfg, const char *name, const char *value)
{
	const struct cli_option *o = value ? find_numeric(cfg->command, name) : NULL;
	uint64_t num = 0;
	char err[256];
	if (o && option_parse_num(o, value, &num, err, sizeof(err)) < 0) {
		log_error("--%s: %s", name, err);
		return -1;
	}
	return config_append(cfg, name, value, o != NULL, num);
}

static int config_add_arg(struct config *cfg, const char *arg)
{
	if (cfg->n_args == cfg->cap_args) {
		size_t cap = cfg->cap_args ? cfg->cap_args * 2 : 8;
		void *p = realloc(cfg->args, cap * sizeof(*cfg->args));
		if (!p)
			return -1;
		cfg->args = p;
		cfg->cap_args = cap;
	}
	cfg->args[cfg->n_args++] = arg;
	return 0;
}

int config_copy(struct config *dst, const struct config *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->command = src->command;
	for (size_t i = 0; i < src->n_entries; i++) {
		const struct config_entry *e = &src->entries[i];
		if (config_append(dst, e->name, e->value, e->has_num, e->num) < 0)
			goto oom;
	}
	for (size_t i = 0; i < src->n_args; i++)
		if (config_add_arg(dst, src->args[i]) < 0)
			goto oom;
	return 0;
oom:
	config_free(dst);
	return -1;
}

void config_free(struct config *cfg)
{
	free(cfg->entries);
	free(cfg->args);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_get(const struct config *cfg, const char *name)
{
	for (size_t i = cfg->n_entries; i-- > 0;)
		if (strcmp(cfg->entries[i].name, name) == 0)
			return cfg->entries[i].value;
	return NULL;
}

size_t config_get_all(const struct config *cfg, const char *name,
		      const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_entries; i++) {
		if (strcmp(cfg->entries[i].name, name) != 0)
			continue;
		if (n < max)
			out[n] = cfg->entries[i].value;
		n++;
	}
	return n;
}

uint64_t config_get_uint(const struct config *cfg, const char *name, uint64_t dflt)
{
	for (size_t i = cfg->n_entries; i-- > 0;) {
		const struct config_entry *e = &cfg->entries[i];
		if (strcmp(e->name, name) != 0)
			continue;
		if (!e->has_num) {
			log_error("option --%s is read as a number but not declared as one", name);
			abort();
		}
		return e->num;
	}
	return dflt;
}

bool config_flag(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_entries; i++)
		if (strcmp(cfg->entries[i].name, name) == 0)
			return true;
	return false;
}

int parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -1;
	}
	/* Accept "256MiB" and "256MB" as well as "256M". */
	if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_error("%s: %s (see minivmm %s --help)", command, what, command);
	return EXIT_USAGE;
}

static void print_command_help(FILE *f, const struct cli_command *cmd)
{
	fprintf(f, "usage: minivmm %s [options]%s%s\n\n%s\n\noptions:\n", cmd->name,
		cmd->usage && *cmd->usage ? " " : "", cmd->usage ? cmd->usage : "",
		cmd->summary);
	qsort(options, n_options, sizeof(options[0]), cmp_options);
	for (size_t i = 0; i < n_options; i++) {
		const struct cli_option *o = options[i];
		if (strcmp(o->command, cmd->name) != 0)
			continue;
		char head[96];
		char alias[8] = "";
		if (o->short_name)
			snprintf(alias, sizeof(alias), "-%c, ", o->short_name);
		snprintf(head, sizeof(head), "%s--%s%s%s", alias, o->name, o->argname ? " " : "",
			 o->argname ? o->argname : "");
		fprintf(f, "  %-28s %s\n", head, o->help);
	}
	fprintf(f, "  %-28s %s\n", "--help", "show this help");
}

static void print_main_help(FILE *f)
{
	fprintf(f,
		"usage: minivmm COMMAND [options]\n\n"
		"minivmm boots a virtual machine from part of its image and fetches the\n"
		"rest, file by file, when the guest needs it.\n\ncommands:\n");
	qsort(commands, n_commands, sizeof(commands[0]), cmp_commands);
	for (size_t i = 0; i < n_commands; i++)
		fprintf(f, "  %-16s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\nminivmm COMMAND --help shows a command's options; "
		   "minivmm --version its version.\n");
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv,
	      struct config *cfg, bool *help_requested)
{
	bool only_args = false;
	*help_requested = false;
	cfg->command = cmd->name;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (only_args || a[0] != '-' || a[1] == '\0') {
			if (config_add_arg(cfg, a) < 0)
				return EXIT_SETUP;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_args = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*help_requested = true;
			return 0;
		}
		const struct cli_option *o = NULL;
		const char *name = a + 2, *eq = NULL;
		size_t len = 0;
		if (a[1] != '-') {
			/* "-o VALUE": a short alias, never bundled. */
			o = a[2] == '\0' ? find_short_option(cmd->name, a[1]) : NULL;
			if (!o)
				return cli_usage_error(cmd->name, "unknown option %s", a);
		} else {
			eq = strchr(name, '=');
			len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_option(cmd->name, name, len);
		}
		if (!o)
			return cli_usage_error(cmd->name, "unknown option --%.*s", (int)len, name);
		const char *value = NULL;
		uint64_t num = 0;
		if (o->argname) {
			if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				return cli_usage_error(cmd->name, "option --%s needs a value (%s)",
						       o->name, o->argname);
			}
			char err[256];
			if ((o->validate && o->validate(value, err, sizeof(err)) < 0) ||
			    (o->kind != CLI_TEXT && option_parse_num(o, value, &num, err, sizeof(err)) < 0))
				return cli_usage_error(cmd->name, "--%s: %s", o->name, err);
		} else if (eq) {
			return cli_usage_error(cmd->name, "option --%s takes no value", o->name);
		}
		if (config_append(cfg, o->name, value, o->kind != CLI_TEXT, num) < 0)
			return EXIT_SETUP;
	}
	return 0;
}

static const struct cli_command *find_command(int argc, char **argv, int *consumed)
{
	/* Two-word commands ("image build") take precedence over one word. */
	if (argc >= 3) {
		char two[128];
		snprintf(two, sizeof(two), "%s %s", argv[1], argv[2]);
		for (size_t i = 0; i < n_commands; i++)
			if (strcmp(commands[i]->name, two) == 0) {
				*consumed = 3;
				return commands[i];
			}
	}
	for (size_t i = 0; i < n_commands; i++)
		if (strcmp(commands[i]->name, argv[1]) == 0) {
			*consumed = 2;
			return commands[i];
		}
	return NULL;
}

static void print_group_help(FILE *f, const char *group)
{
	size_t len = strlen(group);
	fprintf(f, "usage: minivmm %s SUBCOMMAND [options]\n\nsubcommands:\n", group);
	qsort(commands, n_commands, sizeof(commands[0]), cmp_commands);
	for (size_t i = 0; i < n_commands; i++)
		if (strncmp(commands[i]->name, group, len) == 0 && commands[i]->name[len] == ' ')
			fprintf(f, "  %-16s %s\n", commands[i]->name + len + 1, commands[i]->summary);
}

static bool is_group(const char *word)
{
	size_t len = strlen(word);
	for (size_t i = 0; i < n_commands; i++)
		if (strncmp(commands[i]->name, word, len) == 0 && commands[i]->name[len] == ' ')
			return true;
	return false;
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		print_main_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("minivmm %s (commit %s)\n", MINIVMM_VERSION, version_commit());
		return EXIT_OK;
	}
	int consumed = 0;
	const struct cli_command *cmd = find_command(argc, argv, &consumed);
	if (!cmd) {
		if (is_group(argv[1])) {
			bool want_help = argc >= 3 && (strcmp(argv[2], "--help") == 0 ||
						       strcmp(argv[2], "-h") == 0);
			/* A wrong word: one line. No word: what there is to choose. */
			if (!want_help && argc >= 3)
				return cli_usage_error(argv[1], "unknown subcommand '%s'", argv[2]);
			print_group_help(want_help ? stdout : stderr, argv[1]);
			return want_help ? EXIT_OK : EXIT_USAGE;
		}
		log_error("unknown command '%s' (see minivmm --help)", argv[1]);
		return EXIT_USAGE;
	}
	struct config cfg = {0};
	bool help = false;
	int rc = cli_parse(cmd, argc - consumed, argv + consumed, &cfg, &help);
	if (rc == 0 && help) {
		print_command_help(stdout, cmd);
	} else if (rc == 0) {
		rc = cmd->main(&cfg);
	}
	config_free(&cfg);
	return rc;
}
