PROV_SRC := $(filter-out provisioner/main.c provisioner/ctl_%.c,\
	$(wildcard provisioner/*.c))
PROV_LIB := $(B)/libprison-prov.a
$(PROV_LIB): $(PROV_SRC:%.c=$(B)/%.o)
	rm -f $@ && $(AR) rcs $@ $^
CTL_SRC += $(wildcard provisioner/ctl_*.c)

SBINS += $(B)/prison-provisioner
$(B)/prison-provisioner: $(B)/provisioner/main.o $(PROV_LIB) $(KEYS_LIB) \
		$(COMMON_LIB)
	$(CC) -o $@ $(B)/provisioner/main.o -Wl,--start-group \
		$(PROV_LIB) $(KEYS_LIB) $(COMMON_LIB) -Wl,--end-group \
		$(LDFLAGS) $(ALL_LIBS)
