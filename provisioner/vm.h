/*
 * VM lifecycle inside prison-provisioner: lazy start (ensure), session
 * counting, idle stop, adoption of VMs left running by an earlier
 * provisioner, and stop.  Every entry point is safe to call from several
 * threads at once; concurrent ensures of one project boot a single VM and
 * all return when it is ready.
 */
#ifndef PRISON_VM_H
#define PRISON_VM_H

#include <stddef.h>

#include <jansson.h>

struct prison_config;

/* Called by ensure for each progress line to show the waiting user. */
typedef void (*vm_progress_fn)(const char *msg, void *arg);

/*
 * Load state: adopt VMs recorded in vm_dir whose VMM still runs, remove
 * the records of those that do not, and start the reaper thread that
 * notices dead VMMs and stops idle ones.
 */
int	vm_init(const struct prison_config *, char *err, size_t errlen);

/*
 * Make project's VM ready.  Returns the reply to send (ok or failure with
 * "stage").  With hold, a successful ensure also counts one session;
 * *session receives a ticket for vm_session_end().
 */
json_t	*vm_ensure(const char *project, int hold, long *session,
	    vm_progress_fn progress, void *arg);
void	 vm_session_end(const char *project, long session);
/*
 * A descriptor that reports hang-up once the session's VM stops, or -1
 * (the VM stopped already, or no pipe could be made).  The caller
 * closes it.
 */
int	 vm_session_watch(const char *project, long session);

json_t	*vm_list(void);
json_t	*vm_status(const char *project);
int	 vm_stop(const char *project, char *err, size_t errlen);
int	 vm_stop_all(void);
/* Rebuild the metadata of one running VM, or all when project is NULL. */
int	 vm_refresh(const char *project, char *err, size_t errlen);

/* Stop the reaper (VMs keep running; a restart adopts them). */
void	 vm_shutdown(void);

/* Per-project paths under vm_dir; the caller frees. */
char	*vm_project_dir(const struct prison_config *, const char *project);
/*
 * Make the project's guest SSH host key if it does not exist yet and
 * return its private (OpenSSH format) and public ("ssh-ed25519 AAAA...")
 * forms.  The private one is a secret: freezero it.
 */
int	 vm_host_key(const struct prison_config *, const char *project,
	    char **priv, char **pub, char *err, size_t errlen);
/* The gateway's client key, generated the gateway's way when missing. */
int	 vm_gateway_pub(const struct prison_config *, char **pub, char *err,
	    size_t errlen);

#endif
