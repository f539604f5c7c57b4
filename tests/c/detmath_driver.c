/*
 * detmath_driver.c - the C engine's det_log or det_exp on many inputs, outside Python.
 *
 * The two functions are static in csrc/engine.c, so this file includes engine.c (fwb.h
 * stays as it is).  Built by tests/test_detmath.py with the extension's flags
 * (bench/sim/_build_sim.py CFLAGS, -ffp-contract=off):
 *   cc -std=c99 -O2 -Wall -Wextra -ffp-contract=off -fno-strict-aliasing -Icsrc \
 *      tests/c/detmath_driver.c csrc/strategy_*.c -lm
 * Usage: detmath_driver log|exp < doubles > doubles (native byte order, 8 bytes each).
 * Exit status 0 on success, 1 on bad usage or a short write.
 */
#include <stdio.h>
#include <string.h>

#include "engine.c"

int main(int argc, char **argv)
{
	double x, y;
	int is_log;
	if (argc != 2 || (strcmp(argv[1], "log") && strcmp(argv[1], "exp"))) {
		fprintf(stderr, "usage: %s log|exp < doubles > doubles\n", argv[0]);
		return 1;
	}
	is_log = !strcmp(argv[1], "log");
	while (fread(&x, sizeof x, 1, stdin) == 1) {
		y = is_log ? det_log(x) : det_exp(x);
		if (fwrite(&y, sizeof y, 1, stdout) != 1)
			return 1;
	}
	return 0;
}
