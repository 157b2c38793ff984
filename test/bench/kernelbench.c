/*-------------------------------------------------------------------------
 *
 * kernelbench.c
 *	  Microbenchmark of the distance kernels: ns per distance, per path.
 *
 * Built standalone (test/bench/Makefile) from the kernel sources and
 * vectorcpu.c, with PostgreSQL's own CFLAGS, so "scalar" is the plain loop
 * as the shipped build compiles it.  For each dimension one query is
 * compared with a set of base vectors of about BASE_KB (24) kB, so the
 * figures are the kernels' own speed, not the memory's (make BASE_KB=4096
 * for L2-resident data), through the kernel table's
 * function pointers, exactly as the server calls them.  Each figure is the
 * best of several timed rounds, since the machine is shared and noisy.
 * Not a pass/fail test: it prints figures and ratios.
 *
 * IDENTIFICATION
 *	  test/bench/kernelbench.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vector.h"

/* port.h maps printf to pg_printf, which lives in libpgport: not linked */
#undef printf
#undef fprintf

#define ROUNDS		31
#ifndef BASE_KB
#define BASE_KB		24
#endif
#define MIN_NS		5000000.0	/* each timed run takes at least 5 ms */

static volatile float sink;

/*
 * The thread's CPU time, not wall time: on a shared machine the process is
 * descheduled at random, and that time must not count against a kernel.
 */
static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef enum Op
{
	OP_L2,
	OP_IP,
	OP_COS,
	OP_L1
} Op;

static const char *const op_names[] = {"l2_squared", "inner_product", "cosine_parts", "l1"};

/* ns per distance of reps passes over the base set */
static double
run_once(const VectorKernels *k, Op op, const float *q, const float *base,
		 int nbase, int dim, long reps)
{
	double		t0 = now_ns();
	float		acc = 0;

	for (long i = 0; i < reps; i++)
		for (int j = 0; j < nbase; j++)
		{
			const float *x = base + (size_t) j * dim;
			float		d,
						na,
						nb;

			switch (op)
			{
				case OP_L2:
					acc += k->l2_squared(q, x, dim);
					break;
				case OP_IP:
					acc += k->inner_product(q, x, dim);
					break;
				case OP_COS:
					k->cosine_parts(q, x, dim, &d, &na, &nb);
					acc += d + na + nb;
					break;
				case OP_L1:
					acc += k->l1(q, x, dim);
					break;
			}
		}
	sink = acc;
	return (now_ns() - t0) / ((double) reps * nbase);
}

/*
 * Best ns per distance for each path.  The paths take turns within each
 * round, so a burst of load from other processes hits them alike.
 */
static void
bench(const VectorKernels **ks, int nk, Op op, const float *q,
	  const float *base, int nbase, int dim, double *best)
{
	long		reps[8];

	for (int p = 0; p < nk; p++)
	{
		best[p] = 1e30;
		reps[p] = 1;
		while (ks[p] && run_once(ks[p], op, q, base, nbase, dim, reps[p]) * reps[p] * nbase < MIN_NS)
			reps[p] *= 2;
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int p = 0; p < nk; p++)
			if (ks[p])
				best[p] = Min(best[p], run_once(ks[p], op, q, base, nbase, dim, reps[p]));
}

int
main(int argc, char **argv)
{
	static const int dims[] = {128, 768, 1536, 3072};
	static const char *const paths[] = {"scalar", "avx2", "avx512"};
	double		ns[4][3][4];	/* op, path, dim */
	int			nops = 1;
	int			shift = 1;		/* floats past a 64-byte boundary */
	const VectorKernels *ks[lengthof(paths)];
	double		best[lengthof(paths)];

	for (int p = 0; p < lengthof(paths); p++)
		ks[p] = VectorKernelsForPath(paths[p]);
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--all-ops") == 0)
			nops = 4;
		else if (strcmp(argv[i], "--aligned") == 0)
			shift = 0;
		else
		{
			fprintf(stderr, "usage: %s [--all-ops] [--aligned]\n", argv[0]);
			return 2;
		}
	}

	srand(42);
	printf("distance kernels, CPU ns per distance (best of %d rounds; query vs a %d kB base set, L1-resident; inputs %d bytes past 64-byte alignment)\n", ROUNDS, BASE_KB, shift * 4);
	for (int o = 0; o < nops; o++)
	{
		printf("\n%-14s %8s %10s %10s %10s\n", op_names[o], "dims", "scalar", "avx2", "avx512");
		for (int d = 0; d < lengthof(dims); d++)
		{
			int			dim = dims[d];
			int			nbase = Max(1, (BASE_KB * 1024) / (dim * (int) sizeof(float)));
			/* 64-byte aligned buffers, used from "shift" floats in */
			float	   *q = aligned_alloc(64, sizeof(float) * (dim + 16));
			float	   *base = aligned_alloc(64, sizeof(float) * ((size_t) nbase * dim + 16));

			for (int i = 0; i <= dim; i++)
				q[i] = (float) rand() / RAND_MAX - 0.5f;
			for (size_t i = 0; i <= (size_t) nbase * dim; i++)
				base[i] = (float) rand() / RAND_MAX - 0.5f;

			bench(ks, lengthof(paths), (Op) o, q + shift, base + shift, nbase, dim, best);
			printf("%-14s %8d", "", dim);
			for (int p = 0; p < lengthof(paths); p++)
			{
				ns[o][p][d] = ks[p] ? best[p] : 0;
				if (ks[p])
					printf(" %10.1f", ns[o][p][d]);
				else
					printf(" %10s", "n/a");
			}
			printf("\n");
			fflush(stdout);
			free(q);
			free(base);
		}
	}

	printf("\nratios at 768 dims (l2_squared; targets: avx512/avx2 >= 1.5, avx2/scalar >= 4):\n");
	if (ns[0][1][1] > 0)
		printf("  avx2 / scalar  speedup %.2fx\n", ns[0][0][1] / ns[0][1][1]);
	if (ns[0][2][1] > 0 && ns[0][1][1] > 0)
		printf("  avx512 / avx2  speedup %.2fx\n", ns[0][1][1] / ns[0][2][1]);
	if (ns[0][2][1] > 0)
		printf("  avx512 / scalar speedup %.2fx\n", ns[0][0][1] / ns[0][2][1]);
	return 0;
}
