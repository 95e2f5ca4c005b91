KEYS_SRC := $(filter-out keys/prisonctl.c keys/ctl_%.c,$(wildcard keys/*.c))
KEYS_LIB := $(B)/libprison-keys.a
$(KEYS_LIB): $(KEYS_SRC:%.c=$(B)/%.o)
	rm -f $@ && $(AR) rcs $@ $^
CTL_SRC += keys/prisonctl.c $(wildcard keys/ctl_*.c)
