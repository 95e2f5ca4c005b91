/*
 * The nftables table prison owns (cfg->nft_table, family inet).
 *
 * The rules are fixed; everything per project lives in sets and maps, so
 * the rule count never grows and a project comes or goes in one batch of
 * element changes.  The whole table is rebuilt from the state file in one
 * transaction ("add; delete; add" so it works whether or not the table
 * exists), which is how daemon start and reconcile make it exact.  No
 * other table is ever named.
 *
 *   taps       set of prison TAP names
 *   guest_src  TAP . guest address: the only source a TAP may send from
 *   host_dst   TAP . host address: for the optional DNS rule
 *   tap_host   TAP -> host address: metadata DNAT target
 *   egress     TAPs whose guest may leave through the LAN (masqueraded)
 *   ports      host port -> guest address . 22 (direct SSH DNAT)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "config.h"
#include "log.h"
#include "net_int.h"
#include "xmalloc.h"

static int
valid_word(const char *s, const char *extra)
{
	if (*s == '\0' || strlen(s) > 31)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' ||
		    strchr(extra, *s) != NULL))
			return 0;
	return 1;
}

static int
nft_run(const char *cmds, char *err, size_t errlen)
{
	struct nft_ctx *ctx = NULL;
	const char *msg;
	size_t n;
	int ret = -1;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		return seterr(err, errlen, "nftables: cannot create context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmds) != 0) {
		msg = nft_ctx_get_error_buffer(ctx);
		if (msg == NULL || *msg == '\0')
			msg = "failed";
		n = strcspn(msg, "\n");
		seterr(err, errlen, "nftables: %.*s", (int)n, msg);
		goto out;
	}
	ret = 0;
out:
	nft_ctx_free(ctx);
	return ret;
}

static int
check_names(const struct prison_config *cfg, const char *lan, char *err,
    size_t errlen)
{
	struct in_addr a;

	if (!valid_word(cfg->nft_table, ""))
		return seterr(err, errlen, "nft_table \"%s\": use letters, "
		    "digits and _ (at most 31)", cfg->nft_table);
	if (inet_pton(AF_INET, cfg->metadata_address, &a) != 1)
		return seterr(err, errlen, "metadata_address \"%s\": not an "
		    "IPv4 address", cfg->metadata_address);
	if (lan != NULL && !valid_word(lan, "-.@:"))
		return seterr(err, errlen, "lan_interface \"%s\": not an "
		    "interface name", lan);
	return 0;
}

/* Emit "type ...; elements = { ... }" for the up projects. */
enum elem { E_TAPS, E_SRC, E_HOST, E_TAPHOST, E_EGRESS, E_PORTS };

static int
elem_print(FILE *f, const struct net_state *st, const struct net_rec *r,
    enum elem e)
{
	char host[16], guest[16];

	net_rec_addrs(st, r, host, guest, sizeof(host));
	switch (e) {
	case E_TAPS:
		return fprintf(f, "\"%s\"", r->tap);
	case E_SRC:
		return fprintf(f, "\"%s\" . %s", r->tap, guest);
	case E_HOST:
		return fprintf(f, "\"%s\" . %s", r->tap, host);
	case E_TAPHOST:
		return fprintf(f, "\"%s\" : %s", r->tap, host);
	case E_EGRESS:
		if (!r->egress_allow)
			return 0;
		return fprintf(f, "\"%s\"", r->tap);
	case E_PORTS:
		if (r->ssh_port <= 0)
			return 0;
		return fprintf(f, "%d : %s . 22", r->ssh_port, guest);
	}
	return 0;
}

static int
elem_wanted(const struct net_rec *r, enum elem e)
{
	if (!r->up)
		return 0;
	if (e == E_EGRESS)
		return r->egress_allow;
	if (e == E_PORTS)
		return r->ssh_port > 0;
	return 1;
}

static void
set_print(FILE *f, const struct net_state *st, const char *kind,
    const char *name, const char *type, enum elem e)
{
	size_t i;
	int n = 0;

	fprintf(f, "\t%s %s {\n\t\ttype %s\n", kind, name, type);
	for (i = 0; i < st->nrecs; i++) {
		if (!elem_wanted(&st->recs[i], e))
			continue;
		fputs(n++ == 0 ? "\t\telements = { " : ",\n\t\t\t", f);
		elem_print(f, st, &st->recs[i], e);
	}
	fprintf(f, "%s\t}\n", n > 0 ? " }\n" : "");
}

static void
chains_print(FILE *f, const struct prison_config *cfg, const char *pool,
    const char *lan)
{
	const char *md = cfg->metadata_address;

	fprintf(f,
	    "\tchain pre_raw {\n"
	    "\t\ttype filter hook prerouting priority raw; policy accept;\n"
	    "\t\tiifname @taps meta nfproto ipv6 drop\n"
	    "\t\tiifname @taps iifname . ip saddr != @guest_src drop\n"
	    "\t}\n"
	    "\tchain pre_nat {\n"
	    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
	    "\t\tiifname @taps ip daddr %s tcp dport 80 "
	    "dnat ip to iifname map @tap_host\n"
	    "\t\tiifname != @taps fib daddr type local tcp dport @ports "
	    "dnat ip to tcp dport map @ports\n"
	    "\t}\n"
	    "\tchain out_nat {\n"
	    "\t\ttype nat hook output priority -100; policy accept;\n"
	    "\t\tfib daddr type local ip daddr != 127.0.0.0/8 "
	    "tcp dport @ports dnat ip to tcp dport map @ports\n"
	    "\t}\n", md);
	fprintf(f,
	    "\tchain post_nat {\n"
	    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	    "\t\toifname \"%s\" ip saddr %s masquerade\n"
	    "\t}\n"
	    "\tchain input {\n"
	    "\t\ttype filter hook input priority filter; policy accept;\n"
	    "\t\tiifname @taps jump guest_in\n"
	    "\t}\n"
	    "\tchain guest_in {\n"
	    "\t\tct state established,related accept\n"
	    "\t\tct original ip daddr %s tcp dport 80 "
	    "iifname . ip daddr @host_dst accept\n",
	    lan, pool, md);
	if (cfg->allow_dns)
		fprintf(f,
		    "\t\tiifname . ip daddr @host_dst udp dport 53 accept\n"
		    "\t\tiifname . ip daddr @host_dst tcp dport 53 accept\n");
	fprintf(f,
	    "\t\tdrop\n"
	    "\t}\n"
	    "\tchain forward {\n"
	    "\t\ttype filter hook forward priority filter; policy accept;\n"
	    "\t\tiifname @taps jump from_guest\n"
	    "\t\toifname @taps jump to_guest\n"
	    "\t}\n"
	    "\tchain from_guest {\n"
	    "\t\tct state established,related accept\n"
	    "\t\toifname @taps drop\n"
	    "\t\tip daddr %s drop\n"
	    "\t\tiifname @egress oifname \"%s\" accept\n"
	    "\t\tdrop\n"
	    "\t}\n"
	    "\tchain to_guest {\n"
	    "\t\tct state established,related accept\n"
	    "\t\tct status dnat tcp dport 22 accept\n"
	    "\t\tdrop\n"
	    "\t}\n", md, lan);
}

int
nft_rebuild(const struct prison_config *cfg, const struct net_state *st,
    const char *lan, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (check_names(cfg, lan, err, errlen) == -1)
		return -1;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return seterr(err, errlen, "open_memstream failed");
	fprintf(f, "table inet %s {}\ndelete table inet %s\n"
	    "table inet %s {\n", cfg->nft_table, cfg->nft_table,
	    cfg->nft_table);
	set_print(f, st, "set", "taps", "ifname", E_TAPS);
	set_print(f, st, "set", "guest_src", "ifname . ipv4_addr", E_SRC);
	set_print(f, st, "set", "host_dst", "ifname . ipv4_addr", E_HOST);
	set_print(f, st, "map", "tap_host", "ifname : ipv4_addr", E_TAPHOST);
	set_print(f, st, "set", "egress", "ifname", E_EGRESS);
	set_print(f, st, "map", "ports",
	    "inet_service : ipv4_addr . inet_service", E_PORTS);
	chains_print(f, cfg, st->pool, lan);
	fputs("}\n", f);
	fclose(f);
	ret = nft_run(buf, err, errlen);
	free(buf);
	return ret;
}

static void
elems_print(FILE *f, const char *verb, const char *table,
    const struct net_state *st, const struct net_rec *r)
{
	static const struct {
		const char	*set;
		enum elem	 e;
	} sets[] = {
		{ "taps", E_TAPS }, { "guest_src", E_SRC },
		{ "host_dst", E_HOST }, { "tap_host", E_TAPHOST },
		{ "egress", E_EGRESS }, { "ports", E_PORTS },
	};
	char *one = NULL;
	size_t i, len = 0;
	FILE *g;

	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		if ((g = open_memstream(&one, &len)) == NULL)
			continue;
		elem_print(g, st, r, sets[i].e);
		fclose(g);
		if (*one != '\0')
			fprintf(f, "%s element inet %s %s { %s }\n", verb,
			    table, sets[i].set, one);
		free(one);
		one = NULL;
	}
}

int
nft_project(const struct prison_config *cfg, const struct net_state *st,
    const struct net_rec *del, const struct net_rec *add, char *err,
    size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (check_names(cfg, NULL, err, errlen) == -1)
		return -1;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return seterr(err, errlen, "open_memstream failed");
	if (del != NULL)
		elems_print(f, "delete", cfg->nft_table, st, del);
	if (add != NULL)
		elems_print(f, "add", cfg->nft_table, st, add);
	fclose(f);
	ret = len == 0 ? 0 : nft_run(buf, err, errlen);
	free(buf);
	return ret;
}
