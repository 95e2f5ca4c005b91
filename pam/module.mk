PAM_SRC := $(wildcard pam/*.c)
EXTRA_ALL += $(if $(PAM_SRC),$(B)/pam_prison.so)
$(B)/pam_prison.so: $(PAM_SRC:%.c=$(B)/%.o) $(KEYS_LIB) $(COMMON_LIB)
	$(CC) -shared -o $@ $(PAM_SRC:%.c=$(B)/%.o) $(KEYS_LIB) $(COMMON_LIB) \
		$(LDFLAGS) $(ALL_LIBS)
