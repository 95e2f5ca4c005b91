# Unit tests: tests/unit/test_*.c, one cmocka binary each.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_TESTS += $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
# Prerequisites are expanded when read, before the top Makefile sets
# COMPONENT_LIBS, so name the libraries here or tests link stale ones.
TEST_LIB_DEPS := $(PROV_LIB) $(GW_LIB) $(KEYS_LIB) $(COMMON_LIB)
$(B)/tests/test_%: $(B)/tests/unit/test_%.o $(TEST_LIB_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< -Wl,--start-group $(COMPONENT_LIBS) -Wl,--end-group \
		$(LDFLAGS) $(ALL_LIBS) -lcmocka

# Fuzz targets: tests/fuzz/fuzz_*.c, built with clang's libFuzzer.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS += $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address \
	-Icommon -Ikeys -Iprovisioner -Igateway $(PKG_CFLAGS)
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(filter-out %/prisonctl.c,\
		$(COMMON_SRC) $(KEYS_SRC))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(ALL_LIBS)

# Test helpers: tests/helpers/*.c, small programs the integration tests
# drive (frame relays, protocol doubles).  Built by `make check`.
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPERS := $(HELPER_SRC:tests/helpers/%.c=$(B)/helpers/%)
UNIT_TESTS += $(HELPERS)
$(B)/helpers/%: $(B)/tests/helpers/%.o $(TEST_LIB_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< -Wl,--start-group $(COMPONENT_LIBS) -Wl,--end-group \
		$(LDFLAGS) $(ALL_LIBS)
