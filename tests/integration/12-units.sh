#!/usr/bin/env bash
# The shipped systemd units: systemd's own checker accepts them (no
# unknown or misspelt directive, every path and program resolvable), they
# keep the hardening the docs promise, and no path they need to exist is
# one a host may lack.  systemd is not PID 1 here, so the units are
# checked, not run; the daemons' readiness notification is tested in
# 30-gateway and 50-vm.
. "$(dirname "$0")/../lib.sh"
need_cmd systemd-analyze
setup_tmp

for u in prison-gateway prison-provisioner; do
	# The programs as built, where the unit expects them installed.
	sed "s|/usr/local/sbin/|$BUILD/|g" "$TOP/contrib/systemd/$u.service" \
	    >"$T/$u.service"
	out=$(systemd-analyze verify "$T/$u.service" 2>&1); rc=$?
	expect_eq "$u: systemd-analyze verify accepts it" "0 " "$rc $out"
	unit=$(cat "$T/$u.service")
	for want in '^Type=notify$' '^Restart=on-failure$' \
	    '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' \
	    '^CapabilityBoundingSet=' '^KillMode=process$'; do
		expect_match "$u: $want" "$want" "$unit"
	done
	# A ReadWritePaths entry that does not exist stops the unit from
	# starting (226/NAMESPACE) unless it is marked optional with "-".
	for p in $(sed -n 's/^ReadWritePaths=//p' "$T/$u.service"); do
		case $p in
		-*|/var/lib/prison|/run/prison) ok "$u: $p is created by the unit or optional" ;;
		*) not_ok "$u: $p must exist on every host" ;;
		esac
	done
done
