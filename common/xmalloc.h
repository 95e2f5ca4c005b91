/*
 * Allocation that cannot fail: out of memory is fatal, sizes are checked
 * for overflow.  Secrets are released with freezero() so their bytes do
 * not linger in freed memory.
 */
#ifndef PRISON_XMALLOC_H
#define PRISON_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 freezero(void *, size_t);

#endif
