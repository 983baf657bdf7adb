# minivmm build. Sources are found by folder: a new .c file in vmm/, net/,
# devices/ (and its subfolders) or fetch/ is built without touching this file,
# and so is a new tests/unit/test_*.c or guest-tests/*.c.
#
#   make            build/minivmm
#   make deps       install the Debian packages everything needs (idempotent)
#   make check      deps, build, unit tests, guest tests and sandbox tests
#   make asan       unit tests under ASan + UBSan (same as SANITIZE=1 unit)
#   make fuzz       longer fuzzing runs (FUZZ_SECONDS per target)

CC ?= gcc
SANITIZE ?= 0
BUILD ?= build
ifeq ($(SANITIZE),1)
BUILD := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

PKGS := libcurl jansson libelf libcrypto libzstd
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libslirp (net/slirp.c): its .pc names glib-2.0, which the header does
# not need; without libglib2.0-dev pkg-config fails, so fall back.
SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null || echo -I/usr/include/slirp)
SLIRP_LIBS := $(shell pkg-config --libs slirp 2>/dev/null || echo -lslirp)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -I. -MMD -MP $(PKG_CFLAGS) $(SLIRP_CFLAGS)
LDLIBS := $(PKG_LIBS) $(SLIRP_LIBS) -lpthread

LIB_SRCS := $(filter-out vmm/main.c,$(sort $(wildcard vmm/*.c devices/*.c devices/*/*.c net/*.c fetch/*.c fs/*.c image/*.c lib/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/vmm/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)

.PHONY: all deps check check-long unit asan guests fuzz clean sandbox-tests demo
all: $(BUILD)/minivmm guests

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @echo "  $(1)	$(2)"
endif

# The commit `minivmm --version` names (lib/version.c). The stamp is
# rewritten only when the description changes, so an unchanged tree
# neither recompiles nor relinks.
GIT_DESCRIBE := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/commit.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(GIT_DESCRIBE)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/lib/version.o: $(BUILD)/commit.stamp
$(BUILD)/lib/version.o: ALL_CFLAGS += -DMINIVMM_COMMIT='"$(GIT_DESCRIBE)"'
.PHONY: FORCE
FORCE:

$(BUILD)/minivmm: $(LIB_OBJS) $(MAIN_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(BUILD)/unit-tests: $(LIB_OBJS) $(UNIT_OBJS)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

unit: $(BUILD)/unit-tests
	CK_FORK=yes $(BUILD)/unit-tests

asan:
	$(MAKE) SANITIZE=1 unit

# Bare-metal test guests: freestanding, no libc, their own small runtime.
include guest-tests/guests.mk

deps:
	scripts/deps

check: deps
	$(MAKE) all
	scripts/run-checks

# Everything check runs, plus the long tests (measurements such as the
# virtio-blk throughput ratio).
check-long: deps
	$(MAKE) all
	MINIVMM_LONG_TESTS=1 scripts/run-checks

fuzz:
	scripts/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-san build-fuzz

# Parts of the project add their own targets in mk/*.mk (demo-image, bench, ...).
-include mk/*.mk

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJS:.o=.d)

demo:
	scripts/demo
