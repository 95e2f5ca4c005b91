/*
 * The lifecycle of project VMs inside prison-provisioner.
 *
 * One struct vm per project ever asked for, in a list guarded by one
 * mutex.  A VM moves STOPPED -> STARTING -> RUNNING -> STOPPING ->
 * STOPPED; the thread that moves it out of STOPPED does the slow work
 * without the lock, and every other thread that wants the same VM waits
 * on its condition variable, so N concurrent ensures boot one VM and all
 * return when it is ready (or all see why it failed).
 *
 * A VM's record (vm_dir/PROJECT/state.json) is written before its VMM
 * starts and removed when it stops; a provisioner that starts finds the
 * records and adopts the VMs whose VMM still runs.  An adopted VM is
 * STARTING until its sshd passes the same handshake as a fresh boot, as
 * it may have been caught mid-boot.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libssh/libssh.h>

#include "config.h"
#include "disk.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "mmds.h"
#include "names.h"
#include "net.h"
#include "registry.h"
#include "vm.h"
#include "vmm.h"
#include "xmalloc.h"

#define STOP_TIMEOUT	15	/* seconds for a clean guest shutdown */
#define PROBE_TIMEOUT	5	/* seconds per SSH handshake attempt */
#define STATE_MAX	(64 * 1024)

enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_STOPPING };

static const char *state_names[] = { "stopped", "starting", "running",
    "stopping" };

struct vm {
	char			 name[NAME_MAX_LEN + 1];
	enum vm_state		 state;
	pthread_cond_t		 cond;
	const struct vmm_ops	*ops;
	struct vm_handle	 h;
	struct net_info		 net;
	struct mmds_server	*mmds;
	char			*host_pub;
	char			*dev_user;
	time_t			 started;	/* wall clock */
	time_t			 idle_since;	/* monotonic */
	int			 sessions;
	int			 watch[2];	/* pipe; closed on stop */
	long			 run;		/* bumped at every start */
	long			 fail_run;	/* run whose start failed */
	int			 unknown;	/* VMM unanswering: warned */
	char			 fail_err[512];
	const char		*fail_stage;
	struct vm		*next;
};

static const struct prison_config *cfg;
static pthread_mutex_t vms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vm *vms;
static pthread_t reaper;
static volatile int reaper_quit;

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Called with vms_lock held. */
static struct vm *
vm_find(const char *name, int create)
{
	struct vm *v;

	for (v = vms; v != NULL; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	if (!create)
		return NULL;
	v = xcalloc(1, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	pthread_cond_init(&v->cond, NULL);
	v->watch[0] = v->watch[1] = -1;
	v->next = vms;
	vms = v;
	return v;
}

/*
 * Held sessions watch the read end of a pipe that lives as long as the
 * VM runs; closing it on stop wakes every one of them at once, so the
 * front doors can end their sessions instead of waiting for a dead TCP
 * peer.  Called with vms_lock held.
 */
static void
watch_open(struct vm *v)
{
	if (pipe2(v->watch, O_CLOEXEC) == -1) {
		log_warn("project=%s session watch: %s", v->name,
		    strerror(errno));
		v->watch[0] = v->watch[1] = -1;
	}
}

static void
watch_fire(struct vm *v)
{
	if (v->watch[0] != -1) {
		close(v->watch[0]);
		close(v->watch[1]);
	}
	v->watch[0] = v->watch[1] = -1;
}

char *
vm_project_dir(const struct prison_config *c, const char *project)
{
	return xasprintf("%s/%s", c->vm_dir, project);
}

/* Keys. */

static char *
pub_line(ssh_key key, const char *comment)
{
	char *b64 = NULL, *line;

	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return NULL;
	line = xasprintf("%s %s%s%s", ssh_key_type_to_char(ssh_key_type(key)),
	    b64, comment != NULL ? " " : "", comment != NULL ? comment : "");
	ssh_string_free_char(b64);
	return line;
}

/*
 * Load the private key at path, or make an ed25519 one there first.  The
 * file is written under a temporary name and linked into place, so two
 * writers racing (the gateway makes its client key too) agree on the
 * first one.
 */
static int
key_load_or_make(const char *path, ssh_key *key, char **priv, char *err,
    size_t errlen)
{
	char *data = NULL, *tmp = NULL, *b64 = NULL;
	ssh_key k = NULL;
	int ret = -1;

	*key = NULL;
	if (read_file(path, 64 * 1024, &data, NULL, err, errlen) == -1) {
		if (errno != ENOENT)
			goto out;
		if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &k) != SSH_OK ||
		    ssh_pki_export_privkey_base64(k, NULL, NULL, NULL,
		    &b64) != SSH_OK) {
			seterr(err, errlen, "%s: cannot generate a key", path);
			goto out;
		}
		tmp = xasprintf("%s.new", path);
		if (atomic_write(tmp, b64, strlen(b64), 0600, err,
		    errlen) == -1)
			goto out;
		if (link(tmp, path) == -1 && errno != EEXIST) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			unlink(tmp);
			goto out;
		}
		unlink(tmp);
		ssh_key_free(k);
		k = NULL;
		if (read_file(path, 64 * 1024, &data, NULL, err,
		    errlen) == -1)
			goto out;
	}
	if (ssh_pki_import_privkey_base64(data, NULL, NULL, NULL, &k) !=
	    SSH_OK) {
		seterr(err, errlen, "%s: not a private key libssh can read",
		    path);
		goto out;
	}
	*key = k;
	k = NULL;
	if (priv != NULL) {
		*priv = data;
		data = NULL;
	}
	ret = 0;
 out:
	ssh_key_free(k);
	if (b64 != NULL)
		freezero(b64, strlen(b64));
	if (data != NULL)
		freezero(data, strlen(data));
	free(tmp);
	return ret;
}

int
vm_host_key(const struct prison_config *c, const char *project, char **priv,
    char **pub, char *err, size_t errlen)
{
	char *dir = vm_project_dir(c, project), *path = NULL;
	ssh_key key = NULL;
	int ret = -1;

	*priv = *pub = NULL;
	if (mkdir_p(dir, 0700, err, errlen) == -1)
		goto out;
	path = xasprintf("%s/ssh_host_ed25519_key", dir);
	if (key_load_or_make(path, &key, priv, err, errlen) == -1)
		goto out;
	if ((*pub = pub_line(key, NULL)) == NULL) {
		seterr(err, errlen, "%s: cannot encode the public key", path);
		freezero(*priv, strlen(*priv));
		*priv = NULL;
		goto out;
	}
	ret = 0;
 out:
	ssh_key_free(key);
	free(path);
	free(dir);
	return ret;
}

int
vm_gateway_pub(const struct prison_config *c, char **pub, char *err,
    size_t errlen)
{
	char *dir = xstrdup(c->client_key), *pubpath = NULL;
	ssh_key key = NULL;
	int ret = -1;

	*pub = NULL;
	if (mkdir_p(dirname(dir), 0755, err, errlen) == -1)
		goto out;
	if (key_load_or_make(c->client_key, &key, NULL, err, errlen) == -1)
		goto out;
	if ((*pub = pub_line(key, "prison-gateway")) == NULL) {
		seterr(err, errlen, "%s: cannot encode the public key",
		    c->client_key);
		goto out;
	}
	/* The public half beside it, as the gateway writes it. */
	pubpath = xasprintf("%s.pub", c->client_key);
	if (access(pubpath, F_OK) == -1) {
		char *line = xasprintf("%s\n", *pub);

		atomic_write(pubpath, line, strlen(line), 0644, NULL, 0);
		free(line);
	}
	ret = 0;
 out:
	ssh_key_free(key);
	free(pubpath);
	free(dir);
	return ret;
}

/* Metadata. */

static json_t *
build_doc(const struct registry *reg, const char *project,
    const char *host_ip, char **host_pub, char *err, size_t errlen)
{
	char *priv = NULL, *pub = NULL, *gw = NULL, *extra = NULL;
	struct mmds_input in;
	json_t *doc = NULL;

	if (vm_host_key(cfg, project, &priv, &pub, err, errlen) == -1 ||
	    vm_gateway_pub(cfg, &gw, err, errlen) == -1)
		goto out;
	extra = xasprintf("%s/projects/%s", cfg->config_dir, project);
	memset(&in, 0, sizeof(in));
	in.project = project;
	in.host_ip = host_ip;
	in.gateway_pub = gw;
	in.host_key_priv = priv;
	in.host_key_pub = pub;
	in.extra_dir = extra;
	in.nameservers = cfg->nameservers;
	in.allow_dns = cfg->allow_dns;
	if (mmds_build(reg, &in, &doc, err, errlen) == -1)
		goto out;
	if (host_pub != NULL) {
		*host_pub = pub;
		pub = NULL;
	}
 out:
	if (priv != NULL)
		freezero(priv, strlen(priv));
	free(pub);
	free(gw);
	free(extra);
	return doc;
}

/* Give the VM its new document: our MMDS server, or the VMM's own. */
static int
publish_doc(struct vm *v, json_t *doc, char *err, size_t errlen)
{
	char *s;
	int r;

	if (v->ops->mmds_update == NULL) {
		if (v->mmds == NULL)
			return mmds_start(v->net.tap, v->net.host_ip,
			    NET_METADATA_PORT, v->net.guest_ip, doc,
			    &v->mmds, err, errlen);
		mmds_set_doc(v->mmds, doc);
		return 0;
	}
	s = json_dumps(doc, JSON_COMPACT);
	r = v->ops->mmds_update(&v->h, s, err, errlen);
	freezero(s, strlen(s));
	return r;
}

/* State records. */

static char *
state_path(const char *project)
{
	return xasprintf("%s/%s/state.json", cfg->vm_dir, project);
}

static int
state_write(const struct vm *v, char *err, size_t errlen)
{
	char *path = state_path(v->name), *s;
	json_t *j;
	int r;

	/* Before the VMM starts there is no pid or socket yet: adoption
	 * then asks the driver to find the VMM. */
	j = json_pack("{s:i,s:s,s:s,s:I,s:s?,s:I,s:s,s:s,s:s,s:s,s:s?}",
	    "version", 1, "project", v->name, "vmm", v->ops->name,
	    "pid", (json_int_t)v->h.pid, "api_socket", v->h.api_socket,
	    "started", (json_int_t)v->started, "tap", v->net.tap,
	    "host_ip", v->net.host_ip, "guest_ip", v->net.guest_ip,
	    "dev_user", v->dev_user, "host_key", v->host_pub);
	s = json_dumps(j, JSON_INDENT(2));
	r = atomic_write(path, s, strlen(s), 0600, err, errlen);
	free(s);
	json_decref(j);
	free(path);
	return r;
}

static void
state_remove(const char *project)
{
	char *path = state_path(project);

	unlink(path);
	free(path);
}

/* The guest's sshd. */

/*
 * One SSH handshake with guest:22.  Returns 0 when the server proved it
 * holds the project's host key, 1 when it is not answering yet, -1 (err
 * filled) when it answered with another key.
 */
static int
sshd_probe(const char *ip, const char *expected, char *err, size_t errlen)
{
	ssh_session s = ssh_new();
	ssh_key want = NULL, got = NULL;
	long timeout = PROBE_TIMEOUT;
	int port = 22, no = 0, ret = 1;
	char *b64 = NULL, *sp;

	if (s == NULL)
		return 1;
	/* "ssh-ed25519 BASE64 [comment]": the middle word. */
	if ((sp = strchr(expected, ' ')) != NULL) {
		b64 = xstrdup(sp + 1);
		b64[strcspn(b64, " ")] = '\0';
	}
	if (b64 == NULL || ssh_pki_import_pubkey_base64(b64,
	    SSH_KEYTYPE_ED25519, &want) != SSH_OK) {
		ret = seterr(err, errlen, "the project's host key is "
		    "unreadable");
		goto out;
	}
	ssh_options_set(s, SSH_OPTIONS_HOST, ip);
	ssh_options_set(s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
	ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
	ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
	ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519");
	if (ssh_connect(s) != SSH_OK)
		goto out;
	if (ssh_get_server_publickey(s, &got) != SSH_OK)
		goto out;
	if (ssh_key_cmp(got, want, SSH_KEY_CMP_PUBLIC) != 0) {
		ret = seterr(err, errlen, "the guest's sshd answered with a "
		    "host key other than the project's");
		goto out;
	}
	ret = 0;
 out:
	ssh_key_free(want);
	ssh_key_free(got);
	ssh_disconnect(s);
	ssh_free(s);
	free(b64);
	return ret;
}

/* Starting. */

struct boot {
	struct vm	*v;
	vm_progress_fn	 progress;
	void		*arg;
	const char	*stage;
	char		 err[512];
};

static void
say(struct boot *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(struct boot *b, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("project=%s %s", b->v->name, msg);
	if (b->progress != NULL)
		b->progress(msg, b->arg);
}

static int
wait_sshd(struct boot *b, time_t deadline)
{
	struct vm *v = b->v;
	time_t next_say = mono_now() + 10;
	int r;

	b->stage = "boot";
	for (;;) {
		/* -1 (unknown) is no exit: the deadline bounds the wait. */
		if (v->ops->alive(&v->h) == 0)
			return seterr(b->err, sizeof(b->err), "the VM "
			    "exited while booting; see %s/%s/console.log",
			    cfg->vm_dir, v->name);
		r = sshd_probe(v->net.guest_ip, v->host_pub, b->err,
		    sizeof(b->err));
		if (r == 0)
			return 0;
		if (r == -1) {
			b->stage = "sshd";
			return -1;
		}
		if (mono_now() >= deadline) {
			b->stage = "sshd";
			return seterr(b->err, sizeof(b->err), "the guest's "
			    "sshd did not answer within %d seconds; see "
			    "%s/%s/console.log", cfg->boot_timeout,
			    cfg->vm_dir, v->name);
		}
		if (mono_now() >= next_say) {
			say(b, "waiting for the guest's sshd");
			next_say = mono_now() + 10;
		}
		sleep(1);
	}
}

static void
teardown(struct vm *v)
{
	char err[512];

	if (v->h.pid > 0 && v->ops->stop(cfg, &v->h, STOP_TIMEOUT, err,
	    sizeof(err)) == -1)
		log_warn("project=%s stop failed: %s", v->name, err);
	mmds_stop(v->mmds);
	v->mmds = NULL;
	if (net_down(cfg, v->name, err, sizeof(err)) == -1)
		log_warn("project=%s net down failed: %s", v->name, err);
	state_remove(v->name);
	free(v->h.api_socket);
	memset(&v->h, 0, sizeof(v->h));
}

static int
do_boot(struct boot *b)
{
	struct vm *v = b->v;
	struct registry *reg = NULL;
	const struct reg_project *p;
	char *kernel = NULL, *initrd = NULL, *rootfs = NULL, *disk = NULL;
	char *cmdline = NULL, *vmdir = NULL;
	struct net_project np;
	struct vm_spec spec;
	struct passwd pwbuf, *pw = NULL;
	char pwstr[1024];
	json_t *doc = NULL;
	time_t deadline = mono_now() + cfg->boot_timeout;
	int created, ret = -1;

	memset(&spec, 0, sizeof(spec));
	b->stage = NULL;
	if (registry_load(cfg->registry, &reg, b->err, sizeof(b->err)) == -1)
		goto out;
	if ((p = registry_project(reg, v->name)) == NULL) {
		seterr(b->err, sizeof(b->err), "unknown project \"%s\"",
		    v->name);
		goto out;
	}
	if (p->upstream != NULL) {
		seterr(b->err, sizeof(b->err), "project %s uses an upstream "
		    "(%s), not a VM", v->name, p->upstream);
		goto out;
	}
	if ((v->ops = vmm_lookup(cfg->vmm)) == NULL) {
		b->stage = "vmm";
		seterr(b->err, sizeof(b->err), "unknown vmm \"%s\"", cfg->vmm);
		goto out;
	}
	free(v->dev_user);
	v->dev_user = xstrdup(p->dev_user != NULL && *p->dev_user != '\0' ?
	    p->dev_user : "dev");
	vmdir = vm_project_dir(cfg, v->name);
	spec.project = v->name;
	spec.vm_dir = vmdir;
	/* A VMM of this project that no record names (its provisioner was
	 * killed while starting it) holds the TAP and the disk. */
	v->ops->kill_orphans(cfg, &spec);

	b->stage = "network";
	say(b, "network");
	np.name = v->name;
	np.ssh_port = p->ssh_port;
	np.egress_allow = p->egress_allow;
	if (net_up(cfg, &np, &v->net, b->err, sizeof(b->err)) == -1)
		goto out;

	b->stage = "disk";
	say(b, "disk");
	if (image_paths(cfg, p->image != NULL ? p->image : cfg->default_image,
	    &kernel, &initrd, &rootfs, b->err, sizeof(b->err)) == -1)
		goto fail;
	if (disk_ensure(cfg, v->name, rootfs, &created, b->err,
	    sizeof(b->err)) == -1)
		goto fail;
	if (created)
		say(b, "created the project's disk");
	disk = disk_path(cfg, v->name);

	b->stage = "vmm";
	say(b, "metadata");
	free(v->host_pub);
	v->host_pub = NULL;
	if ((doc = build_doc(reg, v->name, v->net.host_ip, &v->host_pub,
	    b->err, sizeof(b->err))) == NULL)
		goto fail;
	if (v->ops->mmds_update == NULL &&
	    publish_doc(v, doc, b->err, sizeof(b->err)) == -1)
		goto fail;
	if (getpwnam_r(cfg->vmm_user, &pwbuf, pwstr, sizeof(pwstr),
	    &pw) != 0 || pw == NULL) {
		seterr(b->err, sizeof(b->err), "vmm_user \"%s\" does not "
		    "exist; see docs/install.md", cfg->vmm_user);
		goto fail;
	}
	cmdline = xasprintf("prison.ip=%s/%d prison.gw=%s prison.mmds=%s "
	    "prison.project=%s", v->net.guest_ip, v->net.prefix,
	    v->net.host_ip, cfg->metadata_address, v->name);
	spec.tap = v->net.tap;
	spec.mac = v->net.mac;
	spec.host_ip = v->net.host_ip;
	spec.guest_ip = v->net.guest_ip;
	spec.prefix = v->net.prefix;
	spec.vcpus = p->vcpus > 0 ? p->vcpus : cfg->default_vcpus;
	spec.mem_mib = p->mem_mib > 0 ? p->mem_mib : cfg->default_mem_mib;
	spec.kernel = kernel;
	spec.initrd = initrd;
	spec.disk = disk;
	spec.cmdline = cmdline;
	spec.mmds_json = NULL;
	if (v->ops->mmds_update != NULL)
		spec.mmds_json = json_dumps(doc, JSON_COMPACT);
	spec.uid = pw->pw_uid;
	spec.gid = pw->pw_gid;
	say(b, "starting the VM (%s)", v->ops->name);
	/* Recorded first: a provisioner killed from here on leaves a record
	 * for the next one to adopt the VMM by, or to clean up after. */
	v->started = time(NULL);
	if (state_write(v, b->err, sizeof(b->err)) == -1)
		goto fail;
	if (v->ops->start(cfg, &spec, &v->h, b->err, sizeof(b->err)) == -1)
		goto fail;
	if (state_write(v, b->err, sizeof(b->err)) == -1)
		goto fail;

	say(b, "booting");
	if (wait_sshd(b, deadline) == -1)
		goto fail;
	say(b, "ready");
	ret = 0;
	goto out;
 fail:
	log_warn("project=%s start failed stage=%s: %s", v->name,
	    b->stage ? b->stage : "-", b->err);
	teardown(v);
 out:
	if (spec.mmds_json != NULL)
		freezero((char *)spec.mmds_json, strlen(spec.mmds_json));
	json_decref(doc);
	registry_free(reg);
	free(kernel);
	free(initrd);
	free(rootfs);
	free(disk);
	free(cmdline);
	free(vmdir);
	return ret;
}

static json_t *
ready_reply(const struct vm *v)
{
	return json_pack("{s:b,s:s,s:i,s:s,s:s}", "ok", 1, "address",
	    v->net.guest_ip, "port", 22, "host_key", v->host_pub, "dev_user",
	    v->dev_user);
}

static json_t *
fail_reply(const char *stage, const char *msg)
{
	json_t *r = json_pack("{s:b,s:s}", "ok", 0, "error", msg);

	if (stage != NULL)
		json_object_set_new(r, "stage", json_string(stage));
	return r;
}

/*
 * A start (a boot, or an adoption's handshake) ended with r: the VM runs
 * or is stopped, and every waiting thread hears of it.  Called with
 * vms_lock held.
 */
static void
start_done(struct vm *v, int r, const struct boot *b)
{
	if (r == 0) {
		v->state = VM_RUNNING;
		v->sessions = 0;
		v->unknown = 0;
		v->idle_since = mono_now();
		watch_open(v);
		log_notice("project=%s running pid=%ld address=%s", v->name,
		    (long)v->h.pid, v->net.guest_ip);
	} else {
		v->state = VM_STOPPED;
		v->fail_run = v->run;
		v->fail_stage = b->stage;
		snprintf(v->fail_err, sizeof(v->fail_err), "%s", b->err);
	}
	pthread_cond_broadcast(&v->cond);
}

json_t *
vm_ensure(const char *project, int hold, long *session,
    vm_progress_fn progress, void *arg)
{
	struct boot b;
	struct vm *v;
	json_t *reply = NULL;
	long waited = -1;
	int said = 0, r;

	*session = -1;
	memset(&b, 0, sizeof(b));
	pthread_mutex_lock(&vms_lock);
	v = vm_find(project, 1);
	for (;;) {
		if (v->state == VM_RUNNING) {
			reply = ready_reply(v);
			if (hold) {
				v->sessions++;
				*session = v->run;
			}
			pthread_mutex_unlock(&vms_lock);
			return reply;
		}
		if (v->state == VM_STOPPED) {
			/* Another thread's start failed while we waited:
			 * report that instead of retrying at once. */
			if (waited != -1 && v->fail_run == waited) {
				reply = fail_reply(v->fail_stage,
				    v->fail_err);
				pthread_mutex_unlock(&vms_lock);
				return reply;
			}
			break;
		}
		if (v->state == VM_STARTING) {
			waited = v->run;
			if (!said && progress != NULL) {
				progress("waiting for the VM to boot", arg);
				said = 1;
			}
		}
		pthread_cond_wait(&v->cond, &vms_lock);
	}
	v->state = VM_STARTING;
	v->run++;
	pthread_mutex_unlock(&vms_lock);

	b.v = v;
	b.progress = progress;
	b.arg = arg;
	r = do_boot(&b);

	pthread_mutex_lock(&vms_lock);
	start_done(v, r, &b);
	if (r == 0) {
		reply = ready_reply(v);
		if (hold) {
			v->sessions++;
			*session = v->run;
		}
	} else
		reply = fail_reply(b.stage, b.err);
	pthread_mutex_unlock(&vms_lock);
	return reply;
}

void
vm_session_end(const char *project, long session)
{
	struct vm *v;

	pthread_mutex_lock(&vms_lock);
	v = vm_find(project, 0);
	/* A ticket from an earlier run of the VM counts for nothing. */
	if (v != NULL && v->run == session && v->sessions > 0 &&
	    --v->sessions == 0)
		v->idle_since = mono_now();
	pthread_mutex_unlock(&vms_lock);
}

int
vm_session_watch(const char *project, long session)
{
	struct vm *v;
	int fd = -1;

	pthread_mutex_lock(&vms_lock);
	v = vm_find(project, 0);
	if (v != NULL && v->run == session && v->state == VM_RUNNING &&
	    v->watch[0] != -1)
		fd = fcntl(v->watch[0], F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&vms_lock);
	return fd;
}

/* Called with vms_lock held. */
static json_t *
vm_json(const struct vm *v)
{
	json_t *j = json_pack("{s:s,s:s}", "project", v->name, "state",
	    state_names[v->state]);

	if (v->state == VM_STOPPED)
		return j;
	json_object_set_new(j, "vmm", json_string(v->ops != NULL ?
	    v->ops->name : ""));
	json_object_set_new(j, "address", json_string(v->net.guest_ip));
	json_object_set_new(j, "host_address", json_string(v->net.host_ip));
	json_object_set_new(j, "tap", json_string(v->net.tap));
	json_object_set_new(j, "port", json_integer(v->net.ssh_port));
	json_object_set_new(j, "pid", json_integer(v->h.pid));
	json_object_set_new(j, "uptime", json_integer(v->started > 0 ?
	    (json_int_t)(time(NULL) - v->started) : 0));
	json_object_set_new(j, "sessions", json_integer(v->sessions));
	return j;
}

json_t *
vm_list(void)
{
	json_t *arr = json_array();
	struct vm *v;

	pthread_mutex_lock(&vms_lock);
	for (v = vms; v != NULL; v = v->next)
		if (v->state != VM_STOPPED)
			json_array_append_new(arr, vm_json(v));
	pthread_mutex_unlock(&vms_lock);
	return json_pack("{s:b,s:o}", "ok", 1, "vms", arr);
}

json_t *
vm_status(const char *project)
{
	json_t *j;
	struct vm *v;

	pthread_mutex_lock(&vms_lock);
	if ((v = vm_find(project, 0)) != NULL)
		j = vm_json(v);
	else
		j = json_pack("{s:s,s:s}", "project", project, "state",
		    "stopped");
	pthread_mutex_unlock(&vms_lock);
	return json_pack("{s:b,s:o}", "ok", 1, "vm", j);
}

/*
 * Stop v.  Called with vms_lock held; returns with it held.  Returns 1
 * when it stopped the VM, 0 when there was nothing to stop.
 */
static int
stop_locked(struct vm *v, const char *why)
{
	while (v->state == VM_STARTING || v->state == VM_STOPPING)
		pthread_cond_wait(&v->cond, &vms_lock);
	if (v->state != VM_RUNNING)
		return 0;
	v->state = VM_STOPPING;
	watch_fire(v);
	pthread_mutex_unlock(&vms_lock);
	log_notice("project=%s stopping (%s)", v->name, why);
	teardown(v);
	pthread_mutex_lock(&vms_lock);
	v->state = VM_STOPPED;
	v->sessions = 0;
	v->run++;
	pthread_cond_broadcast(&v->cond);
	return 1;
}

int
vm_stop(const char *project, char *err, size_t errlen)
{
	struct vm *v;
	int r = 0;

	pthread_mutex_lock(&vms_lock);
	if ((v = vm_find(project, 0)) == NULL || !stop_locked(v, "asked"))
		r = seterr(err, errlen, "%s is not running", project);
	pthread_mutex_unlock(&vms_lock);
	return r;
}

int
vm_stop_all(void)
{
	struct vm *v;
	int n = 0;

	pthread_mutex_lock(&vms_lock);
	for (v = vms; v != NULL; v = v->next)
		n += stop_locked(v, "stop-all");
	pthread_mutex_unlock(&vms_lock);
	return n;
}

int
vm_refresh(const char *project, char *err, size_t errlen)
{
	struct registry *reg = NULL;
	struct net_info ni;
	char why[512];
	struct vm *v;
	json_t *doc;
	int ret = 0;

	if (registry_load(cfg->registry, &reg, err, errlen) == -1)
		return -1;
	pthread_mutex_lock(&vms_lock);
	for (v = vms; v != NULL; v = v->next) {
		if (v->state != VM_RUNNING || (project != NULL &&
		    strcmp(project, v->name) != 0))
			continue;
		/*
		 * A project deleted from the registry keeps no VM.  Only
		 * when named: a registry that vanished as a whole must not
		 * stop every VM.
		 */
		if (registry_project(reg, v->name) == NULL) {
			log_notice("project=%s gone from the registry",
			    v->name);
			if (project != NULL)
				stop_locked(v, "deleted from the registry");
			continue;
		}
		/* The caller may have changed its port or egress. */
		if (net_show(cfg, v->name, &ni, why, sizeof(why)) == 0)
			v->net = ni;
		if ((doc = build_doc(reg, v->name, v->net.host_ip, NULL, why,
		    sizeof(why))) == NULL ||
		    publish_doc(v, doc, why, sizeof(why)) == -1) {
			log_warn("project=%s refresh failed: %s", v->name,
			    why);
			ret = seterr(err, errlen, "%s: %s", v->name, why);
		}
		json_decref(doc);
	}
	pthread_mutex_unlock(&vms_lock);
	registry_free(reg);
	return ret;
}

/*
 * Holds count only the sessions that asked for the VM through this
 * provisioner.  Before an idle stop, look for SSH connections it cannot
 * know of: through the direct port, or held by a front door across a
 * provisioner restart.  Unreadable conntrack leaves the holds to decide.
 */
static int
busy_unheld(const char *name, const char *guest_ip)
{
	static int warned;
	char err[256];
	int n;

	if ((n = net_count_sessions(guest_ip, 22, err, sizeof(err))) == -1) {
		if (!warned++)
			log_warn("idle check: %s; only sessions held through "
			    "the provisioner keep a VM running", err);
		return 0;
	}
	if (n > 0)
		log_debug("project=%s %d SSH connection(s) without a hold: "
		    "not idle", name, n);
	return n > 0;
}

/* What the reaper looks at for one VM, copied out of the lock. */
struct probe {
	struct vm		*v;
	long			 run;
	const struct vmm_ops	*ops;
	struct vm_handle	 h;
	char			*ip;
	int			 idle;		/* no holds for idle_timeout */
	int			 alive;
	int			 busy;
};

/* Called with vms_lock held; the probes own copies of what they use. */
static struct probe *
probes_take(size_t *np)
{
	struct probe *pr = NULL;
	struct vm *v;
	size_t n = 0, i = 0;

	for (v = vms; v != NULL; v = v->next)
		n += v->state == VM_RUNNING;
	if (n > 0)
		pr = xcalloc(n, sizeof(*pr));
	for (v = vms; v != NULL && i < n; v = v->next) {
		if (v->state != VM_RUNNING)
			continue;
		pr[i].v = v;
		pr[i].run = v->run;
		pr[i].ops = v->ops;
		pr[i].h.pid = v->h.pid;
		if (v->h.api_socket != NULL)
			pr[i].h.api_socket = xstrdup(v->h.api_socket);
		pr[i].ip = xstrdup(v->net.guest_ip);
		pr[i].idle = cfg->idle_timeout > 0 && v->sessions == 0 &&
		    mono_now() - v->idle_since >= cfg->idle_timeout;
		i++;
	}
	*np = i;
	return pr;
}

/* Called with vms_lock held: act on what the probe found. */
static void
probe_act(struct probe *p)
{
	struct vm *v = p->v;

	/* Stopped, restarted or given a session meanwhile: look again. */
	if (v->state != VM_RUNNING || v->run != p->run)
		return;
	if (p->alive == 0) {
		log_notice("project=%s the VM exited", v->name);
		stop_locked(v, "exited");
		return;
	}
	if (p->alive == -1) {
		/* Its process lives; one unanswered API call is no exit. */
		if (!v->unknown++)
			log_warn("project=%s the VMM does not answer; "
			    "keeping the VM", v->name);
		return;
	}
	if (v->unknown) {
		log_notice("project=%s the VMM answers again", v->name);
		v->unknown = 0;
	}
	if (!p->idle || v->sessions != 0 ||
	    mono_now() - v->idle_since < cfg->idle_timeout)
		return;
	if (p->busy)
		v->idle_since = mono_now();
	else
		stop_locked(v, "idle");
}

/*
 * The reaper: VMs whose VMM died, and idle VMs.  VMM calls and conntrack
 * dumps are made without vms_lock, so a slow VMM never holds up ensure
 * or list; the VM's run number tells whether it changed meanwhile.
 */
static void *
reaper_main(void *arg)
{
	struct probe *pr;
	size_t n, i;

	while (!reaper_quit) {
		sleep(1);
		pthread_mutex_lock(&vms_lock);
		pr = probes_take(&n);
		pthread_mutex_unlock(&vms_lock);
		for (i = 0; i < n; i++) {
			pr[i].alive = pr[i].ops->alive(&pr[i].h);
			if (pr[i].alive == 1 && pr[i].idle)
				pr[i].busy = busy_unheld(pr[i].v->name,
				    pr[i].ip);
		}
		pthread_mutex_lock(&vms_lock);
		for (i = 0; i < n; i++)
			probe_act(&pr[i]);
		pthread_mutex_unlock(&vms_lock);
		for (i = 0; i < n; i++) {
			free(pr[i].h.api_socket);
			free(pr[i].ip);
		}
		free(pr);
	}
	return NULL;
}

/* Adoption. */

static const char *
jstr(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? s : "";
}

/*
 * An adopted VM may have been caught mid-boot: it counts as running only
 * once its sshd passes the handshake, as after a boot of our own.
 */
static void *
adopt_wait(void *arg)
{
	struct vm *v = arg;
	struct boot b;
	int r;

	memset(&b, 0, sizeof(b));
	b.v = v;
	if ((r = wait_sshd(&b, mono_now() + cfg->boot_timeout)) == -1) {
		log_warn("project=%s adopted VM not ready stage=%s: %s",
		    v->name, b.stage, b.err);
		teardown(v);
	}
	pthread_mutex_lock(&vms_lock);
	start_done(v, r, &b);
	pthread_mutex_unlock(&vms_lock);
	return NULL;
}

/* Kill what any driver finds of a project that has no record. */
static void
kill_unrecorded(const char *project)
{
	static const char *names[] = { "qemu", "firecracker" };
	char *vmdir = vm_project_dir(cfg, project);
	const struct vmm_ops *ops;
	struct vm_spec spec;
	size_t i;

	memset(&spec, 0, sizeof(spec));
	spec.project = project;
	spec.vm_dir = vmdir;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((ops = vmm_lookup(names[i])) != NULL)
			ops->kill_orphans(cfg, &spec);
	free(vmdir);
}

static void
adopt_one(const char *project, struct registry *reg)
{
	char *path = state_path(project), *vmdir = NULL, err[512];
	struct vm_spec spec;
	struct vm *v = NULL;
	json_t *st = NULL, *doc = NULL;
	json_error_t jerr;
	pthread_t t;

	if ((st = json_load_file(path, 0, &jerr)) == NULL) {
		if (access(path, F_OK) == 0)
			log_warn("%s: unreadable record removed: %s", path,
			    jerr.text);
		unlink(path);
		kill_unrecorded(project);
		goto out;
	}
	pthread_mutex_lock(&vms_lock);
	v = vm_find(project, 1);
	pthread_mutex_unlock(&vms_lock);
	vmdir = vm_project_dir(cfg, project);
	memset(&spec, 0, sizeof(spec));
	spec.project = project;
	spec.vm_dir = vmdir;
	if ((v->ops = vmm_lookup(jstr(st, "vmm"))) == NULL) {
		log_warn("%s: unknown vmm \"%s\"", path, jstr(st, "vmm"));
		goto stale;
	}
	v->h.pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
	v->h.api_socket = xstrdup(jstr(st, "api_socket"));
	if (v->ops->adopt(cfg, &spec, &v->h, err, sizeof(err)) == -1) {
		log_notice("project=%s not adopted: %s", project, err);
		goto stale;
	}
	if (net_show(cfg, project, &v->net, err, sizeof(err)) != 0) {
		/* Its project is gone from the registry (reconciled away):
		 * a VM nobody can reach any more is stopped. */
		log_warn("project=%s has no network record; stopping its VM",
		    project);
		if (v->ops->stop(cfg, &v->h, STOP_TIMEOUT, err,
		    sizeof(err)) == -1)
			log_warn("project=%s stop failed: %s", project, err);
		goto stale;
	}
	free(v->host_pub);
	free(v->dev_user);
	v->host_pub = xstrdup(jstr(st, "host_key"));
	v->dev_user = xstrdup(jstr(st, "dev_user"));
	v->started = (time_t)json_integer_value(json_object_get(st,
	    "started"));
	if ((doc = build_doc(reg, project, v->net.host_ip, NULL, err,
	    sizeof(err))) == NULL || publish_doc(v, doc, err,
	    sizeof(err)) == -1) {
		log_warn("project=%s adopted without metadata: %s", project,
		    err);
	}
	/* The record now names the pid, if it was written before start. */
	if (state_write(v, err, sizeof(err)) == -1)
		log_warn("project=%s record: %s", project, err);
	pthread_mutex_lock(&vms_lock);
	v->state = VM_STARTING;
	v->run++;
	pthread_mutex_unlock(&vms_lock);
	log_notice("project=%s adopted pid=%ld; waiting for its sshd",
	    project, (long)v->h.pid);
	if (pthread_create(&t, NULL, adopt_wait, v) == 0)
		pthread_detach(t);
	else
		adopt_wait(v);
	goto out;
 stale:
	/* The VM is gone, or in a state no one can use: release it all. */
	if (v->ops != NULL)
		v->ops->kill_orphans(cfg, &spec);
	else
		kill_unrecorded(project);
	free(v->h.api_socket);
	memset(&v->h, 0, sizeof(v->h));
	if (net_down(cfg, project, err, sizeof(err)) == -1)
		log_warn("project=%s net down: %s", project, err);
	unlink(path);
 out:
	json_decref(st);
	json_decref(doc);
	free(vmdir);
	free(path);
}

int
vm_init(const struct prison_config *c, char *err, size_t errlen)
{
	struct registry *reg = NULL;
	struct dirent *de;
	DIR *d;

	cfg = c;
	if (mkdir_p(cfg->vm_dir, 0700, err, errlen) == -1)
		return -1;
	if (registry_load(cfg->registry, &reg, err, errlen) == -1)
		return -1;
	if ((d = opendir(cfg->vm_dir)) == NULL) {
		registry_free(reg);
		return seterr(err, errlen, "%s: %s", cfg->vm_dir,
		    strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    name_valid_project(de->d_name, NULL, 0) == -1)
			continue;
		adopt_one(de->d_name, reg);
	}
	closedir(d);
	registry_free(reg);
	if (pthread_create(&reaper, NULL, reaper_main, NULL) != 0)
		return seterr(err, errlen, "cannot start the reaper thread");
	return 0;
}

void
vm_shutdown(void)
{
	reaper_quit = 1;
	pthread_join(reaper, NULL);
}
