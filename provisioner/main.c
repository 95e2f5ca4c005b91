/* Placeholder until the daemon is written. */
#include <stdio.h>

int
main(void)
{
	fputs("not available yet\n", stderr);
	return 1;
}
