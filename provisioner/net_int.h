/*
 * Internals of the network layer shared by net*.c; not for other code.
 */
#ifndef PRISON_NET_INT_H
#define PRISON_NET_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_ALIAS_PREFIX	"prison:"
#define NET_LOCK_FILE		"net.lock"

/* One recorded project: its allocation and what was last applied. */
struct net_rec {
	char		*name;
	uint32_t	 index;		/* which /30 of the pool */
	char		 tap[16];
	int		 up;
	int		 ssh_port;
	int		 egress_allow;
};

struct net_state {
	uint32_t	 base;		/* pool network, host order */
	int		 pool_prefix;
	uint32_t	 nslots;	/* /30s in the pool */
	char		*pool;		/* as configured */
	char		*dir;		/* state_dir/net */
	struct net_rec	*recs;
	size_t		 nrecs;
};

/* net_alloc.c */
uint32_t	 net_hash(const char *s);
int		 net_pool_parse(const char *pool, uint32_t *base, int *prefix,
		    char *err, size_t errlen);
/* Pool and directory only; net_state_load adds every record. */
int		 net_state_open(const char *state_dir, const char *pool,
		    struct net_state *, char *err, size_t errlen);
int		 net_state_load(struct net_state *, char *err, size_t errlen);
void		 net_state_free(struct net_state *);
struct net_rec	*net_state_find(const struct net_state *, const char *name);
/* 0 found, 1 no record, -1 error. */
int		 net_rec_get(const struct net_state *, const char *name,
		    struct net_rec *, char *err, size_t errlen);
int		 net_rec_put(const struct net_state *, const struct net_rec *,
		    char *err, size_t errlen);
/*
 * The project's record; if it had none, a new one (*fresh = 1) whose
 * slot and TAP name are claimed but which the caller must save with
 * net_rec_put, or drop with net_rec_forget.  Saving only once keeps file
 * churn (and with it some filesystems' inode allocation cost) down.
 */
int		 net_rec_alloc(const struct net_state *, const char *name,
		    struct net_rec *, int *fresh, char *err, size_t errlen);
int		 net_rec_forget(const struct net_state *,
		    const struct net_rec *, char *err, size_t errlen);
void		 net_rec_clear(struct net_rec *);
int		 net_port_claim(const struct net_state *, const char *name,
		    int port, char *err, size_t errlen);
void		 net_port_unclaim(const struct net_state *, const char *name,
		    int port);
int		 net_claims_tidy(const struct net_state *, char *err,
		    size_t errlen);
void		 net_rec_addrs(const struct net_state *, const struct net_rec *,
		    char *host, char *guest, size_t len);
void		 net_rec_mac(const struct net_rec *, char *mac, size_t len);

/* Is tap claimed for name in state/taps? */
int		 net_tap_claimed(const struct net_state *, const char *tap,
		    const char *name);

/*
 * net_tap.c.  adopt: also accept an unlabelled TAP of that name (the
 * caller knows it is this project's: claimed, and recorded up).
 */
int	tap_ensure(const char *tap, const char *project, int adopt,
	    uid_t uid, gid_t gid, const char *host_ip, int prefix,
	    char *err, size_t errlen);
int	tap_delete(const char *tap, const char *project, int adopt,
	    char *err, size_t errlen);
int	tap_check(const char *tap, const char *project, int adopt, char *err,
	    size_t errlen);
int	tap_exists(const char *tap);
/* Calls fn(tap, project, arg) for every interface labelled by prison. */
int	tap_foreach_prison(void (*fn)(const char *, const char *, void *),
	    void *arg, char *err, size_t errlen);
int	net_default_iface(char *buf, size_t len, char *err, size_t errlen);
int	net_sysctl(const char *path, const char *value, char *err,
	    size_t errlen);

/* net_nft.c */
struct prison_config;
int	nft_rebuild(const struct prison_config *, const struct net_state *,
	    const char *lan, char *err, size_t errlen);
/* One transaction: the elements of del (if any) out, of add (if any) in. */
int	nft_project(const struct prison_config *, const struct net_state *,
	    const struct net_rec *del, const struct net_rec *add, char *err,
	    size_t errlen);

/* net_ct.c */
int	ct_flush_addr(const char *ip, char *err, size_t errlen);

#endif
