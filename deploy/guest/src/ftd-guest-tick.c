/* ftd-guest-tick: prints "ftd-tick N" to the console every <period_ms> (default
 * 200). N lives in guest memory, so after a checkpoint restore the host sees
 * the sequence continue from where the checkpoint left it (no reset, no gap
 * beyond the ticks that were not yet committed). Absolute deadlines: no drift. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "ftd_console.h"

int main(int argc, char** argv) {
  long period_ms = argc > 1 ? atol(argv[1]) : 200;
  if (period_ms <= 0) period_ms = 200;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (unsigned long long n = 1;; n++) {
    next.tv_nsec += period_ms * 1000000L;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    console("ftd-tick %llu\n", n);
  }
}
