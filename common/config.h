/*
 * /etc/prison/prison.conf: one INI file read by every prison program.
 * The file is chosen by -c FILE, else $PRISON_CONFIG, else the default
 * path; a missing default file means "built-in defaults", a missing file
 * that was asked for is an error.  Every path is overridable, and paths
 * left unset are derived from state_dir and run_dir, so a test can point
 * two keys at a temporary directory and run everything inside it.
 */
#ifndef PRISON_CONFIG_H
#define PRISON_CONFIG_H

#include <stddef.h>

#define PRISON_DEFAULT_CONFIG	"/etc/prison/prison.conf"

struct prison_config {
	char	*file;			/* the file read, or NULL */

	/* [paths] */
	char	*state_dir;		/* /var/lib/prison */
	char	*run_dir;		/* /run/prison */
	char	*config_dir;		/* /etc/prison: host keys, pins */
	char	*registry;		/* state_dir/registry.json */
	char	*image_dir;		/* state_dir/images */
	char	*disk_dir;		/* state_dir/disks */
	char	*vm_dir;		/* state_dir/vms: per-project logs, state */
	char	*provisioner_socket;	/* run_dir/provisioner.sock */
	char	*known_hosts;		/* state_dir/known_hosts: pinned keys */
	char	*host_key_ed25519;	/* config_dir/ssh_host_ed25519_key */
	char	*host_key_rsa;		/* config_dir/ssh_host_rsa_key */
	char	*client_key;		/* config_dir/gateway_client_ed25519_key */
	char	*libexec_dir;		/* helpers such as the guest agent */

	/* [network] */
	char	*pool;			/* 172.31.0.0/16 */
	char	*lan_interface;		/* "" = default route's interface */
	char	*nft_table;		/* prison */
	char	*metadata_address;	/* 169.254.169.254 */
	int	 allow_dns;		/* guests may query the host's resolver */
	char	*nameservers;		/* guests' resolvers; "" = the host's */

	/* [gateway] */
	char	*listen;		/* 0.0.0.0:22 */
	char	*gateway_user;		/* unprivileged user after bind */
	int	 login_grace_time;	/* seconds */
	int	 max_auth_tries;
	int	 max_unauthenticated;	/* concurrent pre-auth connections */
	int	 max_failures_per_source;
	int	 failure_window;	/* seconds */
	int	 keepalive_interval;	/* seconds, both legs */
	char	*pam_service;		/* "prison"; "" disables PAM */
	int	 second_factor;		/* keyboard-interactive after pubkey */
	int	 agent_forwarding;	/* relay ssh -A */

	/* [provisioner] */
	char	*vmm;			/* qemu | firecracker */
	char	*accel;			/* auto | kvm | tcg */
	char	*vmm_user;		/* uid the VMM runs as */
	char	*default_image;		/* debian */
	int	 default_vcpus;
	int	 default_mem_mib;
	int	 disk_size_mib;		/* project disk size */
	int	 boot_timeout;		/* seconds until sshd must answer */
	int	 idle_timeout;		/* seconds without sessions; 0 = never */
	char	*qemu_binary;
	char	*firecracker_binary;
	char	*jailer_binary;
	char	*jailer_chroot;		/* /srv/jailer */
};

/*
 * Load the configuration.  path may be NULL (then PRISON_CONFIG or the
 * default is used).  Unknown sections or keys, bad numbers and
 * unreadable files are errors naming the file and line.
 */
int	config_load(const char *path, struct prison_config *cfg,
	    char *err, size_t errlen);
void	config_free(struct prison_config *cfg);
/* Print the effective configuration in INI form (prisonctl config). */
void	config_dump(const struct prison_config *cfg, void *FILE_stream);

#endif
