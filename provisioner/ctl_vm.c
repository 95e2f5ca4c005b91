/* Placeholder until this command group is written. */
#include "ctl.h"

int
ctl_vm(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_vm");
}

int
ctl_project_reset(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_project_reset");
}
