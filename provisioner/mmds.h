/*
 * Metadata for guests: the document each guest's agent reads at boot and
 * re-reads periodically, and, for VMMs without a metadata service of
 * their own (qemu), a server speaking Firecracker's MMDS V2 protocol on
 * the metadata address, one listener per TAP device.
 *
 * A guest is identified only by the TAP its request arrived on: each
 * listener is bound to one TAP (SO_BINDTODEVICE) and serves exactly one
 * project's document, and a token is valid only on the listener that
 * issued it.
 */
#ifndef PRISON_MMDS_H
#define PRISON_MMDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

struct prison_config;
struct registry;

#define MMDS_TOKEN_TTL_MAX	21600
#define MMDS_TOKENS_MAX		64

/* The project's inputs to its metadata document. */
struct mmds_input {
	const char	*project;
	const char	*host_ip;	/* gateway key: from="HOST_IP" */
	const char	*gateway_pub;	/* "ssh-ed25519 AAAA... comment" */
	const char	*host_key_priv;	/* the guest's OpenSSH private key */
	const char	*host_key_pub;
	const char	*extra_dir;	/* config_dir/projects/PROJECT; NULL */
	const char	*nameservers;	/* [network] nameservers; NULL = auto */
	int		 allow_dns;	/* [network] allow_dns */
	const char *const *resolv_files; /* auto's sources; NULL: the host's */
};

/*
 * Build {"prison":{...}} for in->project from the registry: members'
 * keys (disabled users left out), the gateway key restricted to the host
 * address, the guest host key, and bootstrap scripts and environment from
 * in->extra_dir when present.
 */
int	mmds_build(const struct registry *, const struct mmds_input *in,
	    json_t **doc, char *err, size_t errlen);

/*
 * The guests' resolvers, at most MMDS_NAMESERVERS_MAX IPv4 addresses
 * (guests have no IPv6): the words of setting ("host" meaning host_ip),
 * or when it is empty the non-loopback nameservers of the first of files
 * that has any, or host_ip when allow_dns is set, or the public
 * resolvers MMDS_NAMESERVERS_FALLBACK.  Returns a new array, or NULL
 * with err filled when setting holds something else.
 */
#define MMDS_NAMESERVERS_MAX		3
#define MMDS_NAMESERVERS_FALLBACK	"1.1.1.1 9.9.9.9"
json_t	*mmds_nameservers(const char *setting, const char *const *files,
	    int allow_dns, const char *host_ip, char *err, size_t errlen);

/* Session tokens of one listener.  Pure logic, unit tested. */
struct mmds_token {
	char	value[64];
	time_t	expires;
};
struct mmds_tokens {
	struct mmds_token	tok[MMDS_TOKENS_MAX];
	size_t			n;
};

/*
 * Parse the X-metadata-token-ttl-seconds header: a decimal integer from
 * 1 to MMDS_TOKEN_TTL_MAX.  Returns the TTL or -1.
 */
int	mmds_parse_ttl(const char *hdr);
/* Issue a token valid for ttl seconds from now; out gets its value. */
int	mmds_token_issue(struct mmds_tokens *, int ttl, time_t now,
	    char *out, size_t outlen);
/* 1 when token is valid at now, 0 otherwise.  Prunes expired ones. */
int	mmds_token_check(struct mmds_tokens *, const char *token, time_t now);

/*
 * Resolve a request path ("/", "/prison", "/prison/authorized_keys/0")
 * in doc.  Returns a borrowed reference or NULL.
 */
json_t	*mmds_lookup(json_t *doc, const char *path);

/* The server. */
struct mmds_server;

/*
 * Listen on addr:port, bound to device ifname, serving doc (a reference
 * is taken) to peer only: the guest's address, which the network layer's
 * anti-spoofing reserves to that guest.  Requests from other devices
 * never reach the listener, and connections from any other address (the
 * host's own processes) are refused at accept.
 */
int	mmds_start(const char *ifname, const char *addr, int port,
	    const char *peer, json_t *doc, struct mmds_server **srv,
	    char *err, size_t errlen);
/* Replace the document served (a reference is taken). */
void	mmds_set_doc(struct mmds_server *, json_t *doc);
void	mmds_stop(struct mmds_server *);

#endif
