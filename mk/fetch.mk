# fetch/: a driver for the host tests and benches (bench/fetch/fetchtool.c),
# linked with fetch/, lib/, the run's prefetcher (fs/prefetch.c, which reads
# the manifest's chunk layout: image/manifest*.c, packed.c) and the few
# vmm/ pieces they use only, and the benches.
FETCH_TOOL_OBJS := $(filter $(BUILD)/fetch/% $(BUILD)/lib/%,$(LIB_OBJS)) \
	$(BUILD)/fs/prefetch.o $(BUILD)/image/packed.o \
	$(patsubst %.c,$(BUILD)/%.o,$(wildcard image/manifest*.c)) \
	$(BUILD)/lib/log.o $(BUILD)/lib/stats.o $(BUILD)/lib/cli.o \
	$(BUILD)/bench/fetch/fetchtool.o

$(BUILD)/fetchtool: $(FETCH_TOOL_OBJS)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-fetch
bench-fetch: $(BUILD)/minivmm $(BUILD)/fetchtool
	BUILD=$(BUILD) bench/fetch/run.sh

-include $(BUILD)/bench/fetch/fetchtool.d

# fetch's own unit tests alone (the full unit-tests binary links everyone's).
FETCH_UNIT_OBJS := $(filter $(BUILD)/fetch/% $(BUILD)/lib/%,$(LIB_OBJS)) \
	$(BUILD)/lib/log.o $(BUILD)/lib/stats.o $(BUILD)/lib/cli.o \
	$(BUILD)/tests/unit/main.o \
	$(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/test_fetch*.c tests/unit/test_cache*.c))
$(BUILD)/fetch-unit-tests: $(FETCH_UNIT_OBJS)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)
