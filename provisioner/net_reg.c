/*
 * Which of the registry's projects have a network here.  One rule, used
 * by the daemon and by prisonctl alike, so that a reconcile keeps the
 * same allocations whoever runs it.
 */
#include <stddef.h>

#include "net.h"
#include "registry.h"
#include "xmalloc.h"

int
net_project_of(const struct reg_project *p, struct net_project *np)
{
	/* Relayed to another host: no VM, so no TAP, subnet or port. */
	if (p->upstream != NULL)
		return -1;
	np->name = p->name;
	np->ssh_port = p->ssh_port;
	np->egress_allow = p->egress_allow;
	return 0;
}

struct net_project *
net_projects_of(const struct registry *reg, size_t *n)
{
	struct net_project *np;
	size_t i;

	*n = 0;
	np = xcalloc(reg->nprojects + 1, sizeof(*np));
	for (i = 0; i < reg->nprojects; i++)
		if (net_project_of(&reg->projects[i], &np[*n]) == 0)
			(*n)++;
	return np;
}
