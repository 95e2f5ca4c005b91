/*
 * Logging for every prison program.  Daemons log to syslog unless started
 * in the foreground (-f), where lines go to stderr.  Helpers never log:
 * they fill an error buffer and let the caller decide.
 */
#ifndef PRISON_LOG_H
#define PRISON_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_NOTICE, LOG_LVL_INFO,
    LOG_LVL_DEBUG };

void	log_init(const char *progname, int to_stderr);
void	log_set_level(enum log_level);
/*
 * For prison code running inside another program (pam_prison.so in sshd
 * or the gateway), which must neither write to that program's stderr
 * nor end it: with a sink, every line goes to sink instead of stderr or
 * syslog; with die, fatal() calls it after logging, and die is expected
 * not to return (it jumps back to the module's entry point).  Should it
 * return, fatal() still exits.  NULL restores the default.  Per thread.
 */
void	log_set_hooks(void (*sink)(enum log_level, const char *),
	    void (*die)(void));
void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Copy an attacker-supplied string into dst for logging: at most dstlen-1
 * bytes, non-printable bytes replaced by '?', so a log line can never be
 * forged or made unbounded.  Returns dst.
 */
char	*log_safe(char *dst, size_t dstlen, const char *src);

/* snprintf into an error buffer; safe with err == NULL.  Returns -1. */
int	seterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
