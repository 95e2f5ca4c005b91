/* Placeholder until this command group is written. */
#include "ctl.h"

int
ctl_doctor(const struct prison_config *cfg, int argc, char **argv)
{
	return ctl_fail("%s: not available yet", "ctl_doctor");
}
