#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "prison";
static int log_stderr = 1;
static enum log_level log_level = LOG_LVL_INFO;
/* Per thread: a host process may run PAM from several at once. */
static __thread void (*log_sink)(enum log_level, const char *);
static __thread void (*log_die)(void);

void
log_init(const char *progname, int to_stderr)
{
	log_prog = progname;
	log_stderr = to_stderr;
	if (!to_stderr)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_hooks(void (*sink)(enum log_level, const char *), void (*die)(void))
{
	log_sink = sink;
	log_die = die;
}

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

static void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE,
	    LOG_INFO, LOG_DEBUG };
	char buf[2048];

	if (lvl > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_sink != NULL)
		log_sink(lvl, buf);
	else if (log_stderr)
		fprintf(stderr, "%s[%ld]: %s\n", log_prog, (long)getpid(), buf);
	else
		syslog(prio[lvl], "%s", buf);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	if (log_die != NULL)
		log_die();
	exit(1);
}

char *
log_safe(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	if (dstlen == 0)
		return dst;
	if (src == NULL)
		src = "(null)";
	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x21 || c > 0x7e) ? '?' : (char)c;
	}
	dst[i] = '\0';
	return dst;
}

int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
