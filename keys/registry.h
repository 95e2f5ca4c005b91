/*
 * The registry: developers, their public keys, projects and membership.
 * Stored as one JSON document (see docs/registry.md), read by every
 * prison program and written only through registry_update(), which locks,
 * re-reads, applies a change and replaces the file atomically.
 */
#ifndef PRISON_REGISTRY_H
#define PRISON_REGISTRY_H

#include <stddef.h>

#define REGISTRY_VERSION	1

/* Accepted ranges for per-project resources (0 = configured default). */
#define REG_MAX_VCPUS		64
#define REG_MIN_MEM_MIB		256	/* less cannot boot the default image */
#define REG_MAX_MEM_MIB		(1024 * 1024)

struct json_t;

struct reg_key {
	char	*type;		/* "ssh-ed25519", ... */
	char	*blob;		/* base64 of the public key blob */
	char	*comment;	/* may be "" */
	char	*fingerprint;	/* "SHA256:..." as ssh-keygen -lf prints */
};

struct reg_user {
	char		*name;
	int		 disabled;
	struct reg_key	*keys;
	size_t		 nkeys;
};

struct reg_project {
	char	 *name;
	char	**members;	/* user names */
	size_t	  nmembers;
	int	  ssh_port;	/* host port DNATed to guest:22; 0 = none */
	int	  vcpus;	/* 0 = configured default */
	int	  mem_mib;	/* 0 = configured default */
	char	 *image;	/* NULL = configured default */
	char	 *repo;		/* NULL = none */
	char	 *ref;		/* NULL = default branch */
	char	 *dev_user;	/* login user inside the guest; "dev" */
	int	  egress_allow;	/* 1 = NAT to the LAN, 0 = replies only */
	int	  agent;	/* ssh -A: REG_AGENT_* */
	char	 *upstream;	/* "host:port": relay there, no VM */
};

/* A project's agent forwarding: the gateway's setting, or its own. */
#define REG_AGENT_DEFAULT	-1
#define REG_AGENT_DENY		0
#define REG_AGENT_ALLOW		1

struct registry {
	struct reg_user		*users;
	size_t			 nusers;
	struct reg_project	*projects;
	size_t			 nprojects;
};

/*
 * Load path.  A missing file is an empty registry.  A corrupt file or an
 * unknown version is an error naming the file; it is never overwritten.
 */
int	registry_load(const char *path, struct registry **reg, char *err,
	    size_t errlen);
void	registry_free(struct registry *reg);
/* Parse a document held in memory; name is used in error messages. */
int	registry_parse(const char *data, size_t len, const char *name,
	    struct registry **reg, char *err, size_t errlen);

/* The registry, or one entry, in the file's JSON form (new references). */
struct json_t	*registry_to_json(const struct registry *);
struct json_t	*registry_user_json(const struct reg_user *);
struct json_t	*registry_key_json(const struct reg_key *);
struct json_t	*registry_project_json(const struct reg_project *);

/*
 * Lock path, load it, call fn, and if fn returns 0 write the result
 * atomically.  fn returning -1 (with err filled) changes nothing.
 */
int	registry_update(const char *path,
	    int (*fn)(struct registry *, void *, char *, size_t), void *arg,
	    char *err, size_t errlen);

struct reg_user		*registry_user(const struct registry *, const char *);
/* A project's agent_forwarding value to REG_AGENT_* (-2: unknown). */
int			 registry_agent_parse(const char *);
const char		*registry_agent_name(int);
struct reg_project	*registry_project(const struct registry *,
			    const char *);
/* The user holding the key with this type and base64 blob, or NULL. */
struct reg_user		*registry_user_by_key(const struct registry *,
			    const char *type, const char *blob,
			    const struct reg_key **key);
int			 registry_is_member(const struct reg_project *,
			    const char *user);
/* Member of project, not disabled: the one access rule. */
int			 registry_may_access(const struct registry *,
			    const char *project, const char *user);

#endif
