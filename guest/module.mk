# The guest agent is built here and copied into guest images.  It runs
# inside the guest, so it links only what images install: libcurl and
# jansson (common/ helpers come in statically).
GUEST_SRC := $(wildcard guest/*.c)
GUEST_LIBS = $(eval GUEST_LIBS := $$(shell pkg-config --libs libcurl jansson \
             2>/dev/null))$(GUEST_LIBS)
EXTRA_ALL += $(if $(GUEST_SRC),$(B)/prison-guest)
$(B)/prison-guest: $(GUEST_SRC:%.c=$(B)/%.o) $(COMMON_LIB)
	$(CC) -o $@ $(GUEST_SRC:%.c=$(B)/%.o) $(COMMON_LIB) $(LDFLAGS) \
		-Wl,--as-needed $(GUEST_LIBS)

# The image recipe (customize.sh, units, sshd settings) sits beside the
# agent, where prisonctl image build looks: libexec_dir/guest-files.
GUEST_FILES := $(wildcard guest/files/*)
EXTRA_ALL += $(GUEST_FILES:guest/files/%=$(B)/guest-files/%)
$(B)/guest-files/%: guest/files/%
	@mkdir -p $(dir $@)
	cp -p $< $@

INSTALL_EXTRA += install -d $(DESTDIR)$(LIBEXECDIR)/guest-files && \
	install -m 0644 $(GUEST_FILES) $(DESTDIR)$(LIBEXECDIR)/guest-files && \
	install -m 0755 $(B)/prison-guest $(DESTDIR)$(LIBEXECDIR);

# The agent's parsers are unit tested without the rest of the agent.
$(B)/tests/test_guest: $(B)/tests/unit/test_guest.o $(B)/guest/cmdline.o \
		$(B)/guest/resolv.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(filter %.o,$^) $(COMMON_LIB) $(LDFLAGS) $(GUEST_LIBS) \
		-lcmocka
