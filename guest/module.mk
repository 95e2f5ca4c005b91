# The guest agent is built here and copied into guest images.
GUEST_SRC := $(wildcard guest/*.c)
EXTRA_ALL += $(if $(GUEST_SRC),$(B)/prison-guest)
$(B)/prison-guest: $(GUEST_SRC:%.c=$(B)/%.o) $(COMMON_LIB)
	$(CC) -o $@ $(GUEST_SRC:%.c=$(B)/%.o) $(COMMON_LIB) $(LDFLAGS) \
		$(ALL_LIBS)
