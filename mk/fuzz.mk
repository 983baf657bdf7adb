# libFuzzer targets: every fuzz/fuzz_*.c becomes build-fuzz/fuzz_* (clang,
# -fsanitize=fuzzer,address,undefined), linked against an archive of the
# whole tree built the same way; the linker takes only the objects a target
# needs. scripts/fuzz drives it (make fuzz, tests/host/50-fuzz-short.sh).
#
#   make fuzz-build    build every target (objects clang cannot build are
#                      left out; a target needing one fails to link)
FUZZ_BUILD := build-fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -I. \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-Wno-unused-command-line-argument -Wno-unknown-warning-option \
	-Wno-gnu-variable-sized-type-not-at-end -MMD -MP $(PKG_CFLAGS) $(SLIRP_CFLAGS)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_ARCHIVE := $(FUZZ_BUILD)/libminivmm-fuzz.a

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

.PHONY: fuzz-build fuzz-objs fuzz-bins
fuzz-objs: $(FUZZ_LIB_OBJS)

# Archive what was built, even if some file of the tree does not build
# with clang today: only the targets that need it should suffer.
fuzz-build:
	-@$(MAKE) -k --no-print-directory fuzz-objs
	@rm -f $(FUZZ_ARCHIVE)
	@ar rcs $(FUZZ_ARCHIVE) $$(ls $(FUZZ_LIB_OBJS) 2>/dev/null)
	@$(MAKE) -k --no-print-directory fuzz-bins

fuzz-bins: $(FUZZ_BINS)

# Kernel loaders register themselves from constructors (LOADER_REGISTER):
# nothing names their objects, so the linker would leave them all out of
# the archive and fuzz_loader would fuzz an empty loader list. Link whole.
FUZZ_EXTRA_fuzz_loader := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(wildcard vmm/loader_*.c))

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_ARCHIVE) $$(FUZZ_EXTRA_fuzz_$$*)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_EXTRA_fuzz_$*) $(FUZZ_ARCHIVE) $(LDLIBS)

-include $(FUZZ_LIB_OBJS:.o=.d)
