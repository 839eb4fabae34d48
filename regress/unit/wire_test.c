/*-------------------------------------------------------------------------
 *
 * wire_test.c
 *		Unit test of the code dsplug's plugin and consumer share to read the
 *		wire format: proto/wire_decode.c and proto/wire_text.c.
 *
 *		wire_test [-s SEED] [-n FUZZ_ITERATIONS]
 *
 * Runs, in order: the text renderings of every kind against strings
 * PostgreSQL 15 prints (test_text.c); decoding of sessions written the way
 * the plugin writes them (test_decode.c); every validation error; and a
 * mutation fuzzer plus allocation-failure injection (test_fuzz.c).  Every
 * decoder runs on a counting allocator and must give back every block.
 * Exits 0 when every check passed, 1 otherwise.  Build it with
 * AddressSanitizer and UndefinedBehaviorSanitizer (the Makefile does when
 * the compiler can) so that a memory error is a failure too.
 *
 * regress/unit/wire_test.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

long		test_checks = 0;
long		test_failures = 0;

static void *test_alloc(void *opaque, size_t size);
static void test_free(void *opaque, void *ptr);

void
test_fail(const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	test_failures++;
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
test_alloc_init(TestAlloc *ta)
{
	memset(ta, 0, sizeof(TestAlloc));
	ta->allocator.alloc = test_alloc;
	ta->allocator.free = test_free;
	ta->allocator.opaque = ta;
	ta->fail_at = -1;
}

static void *
test_alloc(void *opaque, size_t size)
{
	TestAlloc  *ta = opaque;
	void	   *p;

	if (ta->total++ == ta->fail_at)
	{
		ta->failed++;
		return NULL;
	}
	p = malloc(size);
	if (p != NULL)
		ta->live++;
	return p;
}

static void
test_free(void *opaque, void *ptr)
{
	TestAlloc  *ta = opaque;

	if (ptr == NULL)
		return;
	ta->live--;
	free(ptr);
}

int
main(int argc, char **argv)
{
	unsigned long seed = 20240601;
	long		iterations = 3000;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			seed = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			iterations = strtol(argv[++i], NULL, 10);
		else
		{
			fprintf(stderr, "usage: %s [-s SEED] [-n FUZZ_ITERATIONS]\n",
					argv[0]);
			return 2;
		}
	}

	test_text();
	test_decode();
	test_errors();
	test_checksum();
	test_fuzz(seed, iterations);

	printf("wire_test: %ld checks, %ld failed (fuzz seed %lu, %ld iterations)\n",
		   test_checks, test_failures, seed, iterations);
	return test_failures == 0 ? 0 : 1;
}
