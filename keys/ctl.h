/*
 * prisonctl command groups.  Each takes the loaded configuration and the
 * words after the group name, prints results on stdout and a one-line
 * reason on stderr, and returns the process exit status.
 */
#ifndef PRISON_CTL_H
#define PRISON_CTL_H

struct prison_config;

int	ctl_user(const struct prison_config *, int argc, char **argv);
int	ctl_project(const struct prison_config *, int argc, char **argv);
int	ctl_keys(const struct prison_config *, int argc, char **argv);
int	ctl_net(const struct prison_config *, int argc, char **argv);
int	ctl_vm(const struct prison_config *, int argc, char **argv);
int	ctl_project_reset(const struct prison_config *, int argc, char **argv);
/*
 * After a project left the registry: its disk and VM directory are moved
 * aside (kept, never inherited by a new project of the same name) and its
 * addresses released.  Returns the exit status.
 */
int	ctl_project_retire(const struct prison_config *, const char *project);
int	ctl_image(const struct prison_config *, int argc, char **argv);
int	ctl_doctor(const struct prison_config *, int argc, char **argv);
int	ctl_gateway_key(const struct prison_config *, int argc, char **argv);

/* Print "prisonctl: <msg>" on stderr; returns the exit status 1. */
int	ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Remove "--json" from argv; returns 1 when it was present. */
int	ctl_take_json(int *argc, char **argv);

#endif
