/*
 * The provisioner's network layer (docs/network.md).
 *
 * Every project gets a /30 from the configured pool (host = first usable
 * address, guest = second), a persistent TAP owned by the VMM user, and
 * elements in the sets and maps of one nftables table prison owns
 * (cfg->nft_table, family inet).  The allocation is recorded under
 * state_dir/net/ and never moves until the project is released.
 *
 * All functions serialise on state_dir/net.lock, so the daemon and
 * prisonctl may call them concurrently.  They return 0 or -1 with err
 * filled, and never log.
 *
 * Metadata: a guest's packets to NET_METADATA_ADDR:NET_METADATA_PORT
 * (config metadata_address, default 169.254.169.254) are DNATed to its
 * own host address, same port.  A metadata server for a qemu guest must
 * therefore listen on net_info.host_ip:NET_METADATA_PORT (bind after
 * net_up, since the address lives on the TAP).  The address it binds
 * identifies the project.  Nothing else on the host is reachable from
 * a guest (DNS to host_ip:53 only with allow_dns = yes).
 */
#ifndef PRISON_NET_H
#define PRISON_NET_H

#include <stddef.h>

#define NET_METADATA_PORT	80
#define NET_PREFIX		30

struct prison_config;

/* What the registry says about a project's network. */
struct net_project {
	const char	*name;
	int		 ssh_port;	/* host port DNATed to guest:22; 0 = none */
	int		 egress_allow;	/* 1 = masqueraded out the LAN */
};

struct net_info {
	char	tap[16];		/* IFNAMSIZ */
	char	host_ip[16];		/* "172.31.x.y" */
	char	guest_ip[16];
	char	mac[18];		/* stable guest MAC, "52:54:00:..." */
	int	prefix;			/* 30 */
	int	ssh_port;		/* 0 = none */
	int	egress_allow;
	int	up;			/* recorded up (TAP + elements) */
	int	tap_present;		/* net_show: the TAP exists now */
};

/*
 * Daemon start: ip_forward on, the table rebuilt in one transaction from
 * the recorded state, TAPs of projects recorded up re-created if missing,
 * TAPs labelled by prison but not recorded up deleted.  Idempotent.
 */
int	net_init(const struct prison_config *, char *err, size_t errlen);

/*
 * Rebuild only the table from the recorded state, in one transaction
 * (for an operator whose table was flushed by hand; timed by bench/net.sh).
 */
int	net_rebuild(const struct prison_config *, char *err, size_t errlen);

/*
 * Give a project its TAP, addresses and elements (idempotent; settings
 * changed since the last call are applied).  Fills *info.
 */
int	net_up(const struct prison_config *, const struct net_project *,
	    struct net_info *info, char *err, size_t errlen);

/*
 * Remove the TAP and every element of the project and flush its
 * conntrack entries.  The address allocation is kept (it never moves);
 * a project that was not up is not an error.
 */
int	net_down(const struct prison_config *, const char *project,
	    char *err, size_t errlen);

/* Project deleted: net_down and forget its allocation. */
int	net_release(const struct prison_config *, const char *project,
	    char *err, size_t errlen);

/*
 * Fill *info for a project.  Returns 0, 1 when the project has no
 * allocation (info untouched), -1 on error.
 */
int	net_show(const struct prison_config *, const char *project,
	    struct net_info *info, char *err, size_t errlen);

/*
 * net_init, after releasing every recorded project that is not in known
 * (the registry's projects) and refreshing the recorded settings of the
 * rest.  Called at daemon start and by `prisonctl net reconcile`.
 */
int	net_reconcile(const struct prison_config *,
	    const struct net_project *known, size_t nknown,
	    char *err, size_t errlen);

/*
 * The registry changed: every project recorded up whose ssh_port or
 * egress differs from its entry in known gets the new settings, as
 * net_up would give them.  Projects down, or not in known, are left
 * alone (net_reconcile releases those).  Carries on past a failing
 * project; the first error is reported.
 */
int	net_refresh(const struct prison_config *,
	    const struct net_project *known, size_t nknown,
	    char *err, size_t errlen);

/*
 * Whether a process in the caller's network namespace listens on TCP
 * port (any address, IPv4 or IPv6): 1 yes, 0 no, -1 with err set when
 * the kernel's tables cannot be read.  An ssh_port must not be one.
 */
int	net_port_listening(int port, char *err, size_t errlen);

/*
 * The registry's view (net_reg.c): 0 and *np filled when the project has
 * a network here, -1 when it has none (an upstream project, which has no
 * VM).  net_projects_of gives every project that has one, for
 * net_reconcile; np's strings point into reg, and the caller frees the
 * array.
 */
struct reg_project;
struct registry;
int	net_project_of(const struct reg_project *, struct net_project *np);
struct net_project *
	net_projects_of(const struct registry *reg, size_t *n);

/*
 * How many established TCP connections reach ip:port (directly, or
 * through the project's DNAT port), by conntrack; -1 with err set when
 * conntrack cannot be read.
 */
int	net_count_sessions(const char *ip, int port, char *err,
	    size_t errlen);

#endif
