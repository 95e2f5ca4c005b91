# pam_prison.so, and prison-relay, the forced command host OpenSSH runs
# for project accounts.
PAM_SRC := $(filter-out pam/prison-relay.c,$(wildcard pam/*.c))
EXTRA_ALL += $(if $(PAM_SRC),$(B)/pam_prison.so)
# Only pam_sm_* is exported; --as-needed drops the libraries of ALL_LIBS
# the module never calls, so sshd does not map libssh, libnl, ...
$(B)/pam_prison.so: $(PAM_SRC:%.c=$(B)/%.o) $(KEYS_LIB) $(COMMON_LIB) \
		pam/pam_prison.map
	$(CC) -shared -o $@ $(PAM_SRC:%.c=$(B)/%.o) \
		-Wl,--version-script=pam/pam_prison.map -Wl,--as-needed \
		-Wl,-z,now -Wl,-z,relro -Wl,--start-group $(KEYS_LIB) \
		$(COMMON_LIB) -Wl,--end-group $(LDFLAGS) $(ALL_LIBS)

# Not in LIBEXEC: install-pam installs it with its set-gid mode.
EXTRA_ALL += $(if $(wildcard pam/prison-relay.c),$(B)/prison-relay)
$(B)/prison-relay: $(B)/pam/prison-relay.o $(B)/pam/authinfo.o $(KEYS_LIB) \
		$(COMMON_LIB)
	$(CC) -o $@ $(B)/pam/prison-relay.o $(B)/pam/authinfo.o \
		-Wl,--as-needed \
		-Wl,--start-group $(KEYS_LIB) $(COMMON_LIB) -Wl,--end-group \
		$(LDFLAGS) $(ALL_LIBS)

# The top-level install puts the module into PAMDIR.  The relay is
# set-gid to the gateway user's group (see docs/pam.md) when that group
# exists: it must read the gateway's client key and reach the
# provisioner's socket.
PAM_RELAY_GROUP ?= prison
install: install-pam
install-pam: all
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(B)/prison-relay $(DESTDIR)$(LIBEXECDIR)/prison-relay
	@if getent group $(PAM_RELAY_GROUP) >/dev/null; then \
		chgrp $(PAM_RELAY_GROUP) \
		    $(DESTDIR)$(LIBEXECDIR)/prison-relay && \
		chmod 2755 $(DESTDIR)$(LIBEXECDIR)/prison-relay; \
	else \
		echo "note: group $(PAM_RELAY_GROUP) missing; prison-relay" \
		    "is not set-gid (docs/pam.md)"; \
	fi
.PHONY: install-pam
