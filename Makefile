# prison: one non-recursive Makefile.  Each component folder holds a
# module.mk that appends to the lists below; the rules here build them.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/prison
DATADIR    ?= $(PREFIX)/share/prison
PAMDIR     ?= $(firstword $(wildcard /lib/x86_64-linux-gnu/security \
              /usr/lib64/security) /lib/security)
DOCDIR     ?= $(PREFIX)/share/doc/prison
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
DESTDIR    ?=

CC      ?= cc
CFLAGS  ?= -O2 -g
PKGS    := libssh jansson libnl-route-3.0 libnftables libcurl libsodium \
           libmicrohttpd inih libsystemd libseccomp libnetfilter_conntrack
# pkg-config is asked on first use, not when make reads this file, so that
# "make deps check" on a bare machine sees the libraries deps just installed.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $$(PKGS) \
             2>/dev/null))$(PKG_CFLAGS)
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow \
           -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) \
           -Icommon -Ikeys -Iprovisioner -Igateway $(PKG_CFLAGS)
LDFLAGS ?=

B := build

# Filled by module.mk files.
BINS        :=
SBINS       :=
LIBEXEC     :=
UNIT_TESTS  :=
FUZZERS     :=
EXTRA_ALL   :=

all:

include common/module.mk
include keys/module.mk
include provisioner/module.mk
include gateway/module.mk
include pam/module.mk
include guest/module.mk
include tests/module.mk

# prisonctl is assembled from the ctl_*.c files each component contributes.
ALL_LIBS = $(eval ALL_LIBS := $$(shell pkg-config --libs $$(PKGS) \
           2>/dev/null) -lpam -lcrypt)$(ALL_LIBS)
COMPONENT_LIBS = $(PROV_LIB) $(GW_LIB) $(KEYS_LIB) $(COMMON_LIB)
BINS += $(B)/prisonctl
$(B)/prisonctl: $(CTL_SRC:%.c=$(B)/%.o) $(COMPONENT_LIBS)
	$(CC) -o $@ $(filter %.o,$^) -Wl,--start-group $(COMPONENT_LIBS) \
		-Wl,--end-group $(LDFLAGS) $(ALL_LIBS)

all: $(BINS) $(SBINS) $(LIBEXEC) $(EXTRA_ALL)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(B) -path $(B)/images -prune -o -name '*.d' -type f -print 2>/dev/null)

# Debian packages needed to build, test and run.  The dnf names for
# AlmaLinux/RHEL are listed in docs/install.md.
DEB_BUILD := build-essential pkg-config clang libssh-dev libnl-3-dev \
	libnl-route-3-dev libnftables-dev libcurl4-openssl-dev libsodium-dev \
	libjansson-dev libmicrohttpd-dev libinih-dev libcmocka-dev libpam0g-dev \
	libsystemd-dev libseccomp-dev libnetfilter-conntrack-dev
DEB_RUN := openssh-client openssh-server qemu-system-x86 qemu-utils \
	mmdebstrap e2fsprogs xz-utils iproute2 nftables conntrack \
	ca-certificates libpam-modules
DEB_TEST := putty-tools dropbear-bin ssh-audit libpam-wrapper pamtester \
	oathtool libpam-oath \
	socat netcat-openbsd curl python3 python3-yaml python3-paramiko xauth \
	procps psmisc strace git \
	iputils-ping \
	tmux rsync systemd

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		$(DEB_BUILD) $(DEB_RUN) $(DEB_TEST)

# The packages deps installs, for scripts that install only what is
# missing (contrib/prison-demo).
deps-list:
	@echo $(DEB_BUILD) $(DEB_RUN) $(DEB_TEST)

# Everything the tests run, built without running them.
tests: all $(UNIT_TESTS)

check: tests
	@tests/run

# New inputs go to build/fuzz/corpus-NAME; tests/fuzz/corpus/NAME holds
# the checked-in seeds and is only read.
fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); echo "== $$n"; \
		mkdir -p $(B)/fuzz/corpus-$$n; \
		seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
		$$f -max_total_time=$${FUZZ_SECONDS:-60} \
		    $(B)/fuzz/corpus-$$n $$seeds || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR)
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(BINDIR))
	$(if $(SBINS),install -m 0755 $(SBINS) $(DESTDIR)$(SBINDIR))
	$(if $(LIBEXEC),install -m 0755 $(LIBEXEC) $(DESTDIR)$(LIBEXECDIR))
	if [ -f $(B)/prison-guest ]; then \
		install -m 0755 $(B)/prison-guest $(DESTDIR)$(LIBEXECDIR); fi
	if [ -f $(B)/pam_prison.so ]; then install -d $(DESTDIR)$(PAMDIR) && \
		install -m 0644 $(B)/pam_prison.so $(DESTDIR)$(PAMDIR); fi
	install -d $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	cp -R contrib/. $(DESTDIR)$(DATADIR)/
	[ ! -d guest/image ] || cp -R guest/image $(DESTDIR)$(DATADIR)/
	install -m 0644 README.md LICENSE $(wildcard docs/*.md) \
		$(DESTDIR)$(DOCDIR)
	$(INSTALL_EXTRA)

# The README's quick start: set up, start and prove the main job.
demo:
	contrib/prison-demo

demo-stop:
	contrib/prison-demo stop

clean:
	rm -rf $(B)

.PHONY: all deps deps-list tests check fuzz install clean demo demo-stop
.SECONDARY:
