/*
 * prison-guest boot       configure the guest before sshd starts
 * prison-guest refresh    re-read metadata, update authorized_keys
 * prison-guest bootstrap  first boot only: clone the repository, run
 *                         the project's bootstrap scripts
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "xmalloc.h"

#define BOOT_TIMEOUT	120	/* seconds to wait for the metadata */
#define REFRESH_TIMEOUT	10

/* Keep the document for the bootstrap step, without the host key. */
static void
cache_doc(json_t *doc)
{
	json_t *copy = json_deep_copy(doc);
	char err[256], *s;

	json_object_del(copy, "ssh_host_key");
	s = json_dumps(copy, JSON_COMPACT);
	if (mkdir_p(GUEST_RUN_DIR, 0700, err, sizeof(err)) == -1 ||
	    atomic_write(GUEST_DOC_CACHE, s, strlen(s), 0600, err,
	    sizeof(err)) == -1)
		log_warn("cannot keep metadata: %s", err);
	free(s);
	json_decref(copy);
}

static json_t *
fetch(struct guest_cmdline *c, int timeout)
{
	char err[512];
	json_t *doc;

	if ((doc = mmds_fetch(c->mmds, timeout, err, sizeof(err))) == NULL)
		log_err("metadata from %s: %s", c->mmds, err);
	return doc;
}

/* A step that failed is logged; the others still run. */
#define STEP(what, call) do {						\
	err[0] = '\0';							\
	if ((call) == -1) {						\
		log_err("%s: %s", what, err);				\
		failed++;						\
	}								\
} while (0)

static int
cmd_boot(void)
{
	struct guest_cmdline c;
	char err[512], ifname[32];
	const char *user;
	json_t *doc = NULL;
	int failed = 0, r;

	if (cmdline_read(&c, err, sizeof(err)) == -1) {
		log_err("%s", err);
		STEP("host key", setup_host_key(NULL, err, sizeof(err)));
		return 1;
	}
	if (net_pick_interface("eth0", ifname, sizeof(ifname)) == -1) {
		log_err("no network interface");
		failed++;
	} else if (net_configure(ifname, c.ip, c.gw, err,
	    sizeof(err)) == -1) {
		log_err("network: %s", err);
		failed++;
	} else
		log_info("%s: %s via %s", ifname, c.ip, c.gw);
	if ((doc = fetch(&c, BOOT_TIMEOUT)) == NULL) {
		/* No metadata: sshd still gets a host key, nobody a login. */
		STEP("host key", setup_host_key(NULL, err, sizeof(err)));
		cmdline_free(&c);
		return 1;
	}
	cache_doc(doc);
	user = doc_str(doc, "dev_user", "dev");
	STEP("env", setup_env_file(doc, err, sizeof(err)));
	STEP("host key", setup_host_key(doc, err, sizeof(err)));
	STEP("hostname", setup_hostname(doc, c.project, err, sizeof(err)));
	STEP("resolver", setup_resolver(doc, c.gw, err, sizeof(err)));
	STEP("user", r = setup_user(user, err, sizeof(err)));
	if (r == 0)
		STEP("authorized_keys", setup_authorized_keys(doc, user, err,
		    sizeof(err)));
	log_notice("project %s configured%s",
	    doc_str(doc, "project", "?"), failed ? " with errors" : "");
	json_decref(doc);
	cmdline_free(&c);
	return failed ? 1 : 0;
}

static int
cmd_refresh(void)
{
	struct guest_cmdline c;
	char err[512];
	json_t *doc;
	int r = 1;

	if (cmdline_read(&c, err, sizeof(err)) == -1) {
		log_err("%s", err);
		return 1;
	}
	if ((doc = fetch(&c, REFRESH_TIMEOUT)) == NULL)
		goto out;
	switch (setup_authorized_keys(doc, doc_str(doc, "dev_user", "dev"),
	    err, sizeof(err))) {
	case -1:
		log_err("authorized_keys: %s", err);
		goto out;
	case 1:
		log_notice("authorized_keys updated from metadata");
		break;
	}
	cache_doc(doc);
	r = 0;
 out:
	json_decref(doc);
	cmdline_free(&c);
	return r;
}

static int
cmd_bootstrap(void)
{
	struct guest_cmdline c;
	json_error_t je;
	char err[512];
	json_t *doc = NULL;
	int r = 1;

	if (access(GUEST_BOOTSTRAPPED, F_OK) == 0)
		return 0;
	if (cmdline_read(&c, err, sizeof(err)) == 0) {
		doc = fetch(&c, 30);
		cmdline_free(&c);
	}
	if (doc == NULL &&
	    (doc = json_load_file(GUEST_DOC_CACHE, 0, &je)) == NULL) {
		log_err("bootstrap: no metadata");
		return 1;
	}
	if (bootstrap_run(doc, err, sizeof(err)) == -1) {
		log_err("bootstrap: %s", err);
		goto out;
	}
	if (mkdir_p(GUEST_STATE_DIR, 0700, err, sizeof(err)) == -1 ||
	    atomic_write(GUEST_BOOTSTRAPPED, "", 0, 0600, err,
	    sizeof(err)) == -1) {
		log_err("bootstrap: %s", err);
		goto out;
	}
	r = 0;
 out:
	json_decref(doc);
	return r;
}

int
main(int argc, char **argv)
{
	int r;

	log_init("prison-guest", 1);
	if (argc != 2) {
		fprintf(stderr, "usage: prison-guest boot|refresh|bootstrap\n");
		return 2;
	}
	umask(022);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(argv[1], "boot") == 0)
		r = cmd_boot();
	else if (strcmp(argv[1], "refresh") == 0)
		r = cmd_refresh();
	else if (strcmp(argv[1], "bootstrap") == 0)
		r = cmd_bootstrap();
	else {
		fprintf(stderr, "prison-guest: unknown command \"%s\"\n",
		    argv[1]);
		r = 2;
	}
	curl_global_cleanup();
	return r;
}
