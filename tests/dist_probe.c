// tests/dist_probe.c: joins the job its launcher started and prints "rank R of N". The Makefile
// builds it without MPI, so that tests/dist.sh can start it under mpirun and check the one-line
// refusal every copy of such a build prints.
#include <stdio.h>

#include "train/dist.h"

int main(void) {
    Dist *d = dist_open(0);
    printf("rank %d of %d\n", d->rank, d->world);
    dist_close(d);
    return 0;
}
