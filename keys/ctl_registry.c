/* Placeholder until this command group is written. */
#include "ctl.h"

int
ctl_user(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_user");
}

int
ctl_project(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_project");
}

int
ctl_keys(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_keys");
}
