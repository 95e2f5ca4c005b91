GW_SRC := $(filter-out gateway/main.c gateway/ctl_%.c,$(wildcard gateway/*.c))
GW_LIB := $(B)/libprison-gw.a
$(GW_LIB): $(GW_SRC:%.c=$(B)/%.o)
	rm -f $@ && $(AR) rcs $@ $^
CTL_SRC += $(wildcard gateway/ctl_*.c)

SBINS += $(B)/prison-gateway
$(B)/prison-gateway: $(B)/gateway/main.o $(GW_LIB) $(KEYS_LIB) $(COMMON_LIB)
	$(CC) -o $@ $(B)/gateway/main.o -Wl,--start-group \
		$(GW_LIB) $(KEYS_LIB) $(COMMON_LIB) -Wl,--end-group \
		$(LDFLAGS) $(ALL_LIBS)
