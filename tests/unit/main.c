#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>

#define UNIT_MAX_SUITES 64
static Suite *(*makers[UNIT_MAX_SUITES])(void);
static int n_makers;

void unit_register(Suite *(*make)(void))
{
	if (n_makers < UNIT_MAX_SUITES)
		makers[n_makers++] = make;
}

int main(void)
{
	if (n_makers == 0) {
		fprintf(stderr, "no unit test suites registered\n");
		return 1;
	}
	SRunner *sr = srunner_create(makers[0]());
	for (int i = 1; i < n_makers; i++)
		srunner_add_suite(sr, makers[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
