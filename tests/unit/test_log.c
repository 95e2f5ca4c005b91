/*
 * log.c's hooks for code running inside another program: lines reach
 * the sink and not stderr, and fatal() hands control back through die
 * instead of ending the process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "xmalloc.h"

static char seen[256];
static enum log_level seen_lvl;
static jmp_buf back;

static void
sink(enum log_level lvl, const char *msg)
{
	seen_lvl = lvl;
	snprintf(seen, sizeof(seen), "%s", msg);
}

static void
die(void)
{
	longjmp(back, 1);
}

/* Run fn with stderr sent to a file; returns how many bytes it got. */
static long
stderr_bytes(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	long n;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fseek(tmp, 0, SEEK_END);
	n = ftell(tmp);
	fclose(tmp);
	return n;
}

static void
warn_once(void)
{
	log_warn("project=%s refused", "p1");
}

static void
test_sink_not_stderr(void **state)
{
	log_init("test", 1);
	log_set_hooks(sink, NULL);
	seen[0] = '\0';
	assert_int_equal(stderr_bytes(warn_once), 0);
	assert_string_equal(seen, "project=p1 refused");
	assert_int_equal(seen_lvl, LOG_LVL_WARN);

	log_set_hooks(NULL, NULL);
	seen[0] = '\0';
	assert_true(stderr_bytes(warn_once) > 0);
	assert_string_equal(seen, "");
}

static void
test_fatal_comes_back(void **state)
{
	volatile int returned = 0;

	log_set_hooks(sink, die);
	if (setjmp(back) == 0) {
		/* As xmalloc() does when the allocation fails. */
		(void)xreallocarray(NULL, (size_t)-1, 16);
		fail_msg("xreallocarray returned");
	} else
		returned = 1;
	log_set_hooks(NULL, NULL);
	assert_true(returned);
	assert_int_equal(seen_lvl, LOG_LVL_ERR);
	assert_non_null(strstr(seen, "allocation overflow"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sink_not_stderr),
		cmocka_unit_test(test_fatal_comes_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
