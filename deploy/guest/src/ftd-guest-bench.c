/* ftd-guest-bench [MiB] [passes] (default 16 MiB x 10 passes: 0.25-0.4 s per
 * iteration under TCG on the dev machine): a fixed amount of CPU + memory work per
 * iteration, forever, printing "ftd-bench iter=N ms=X" (X = guest-clock time
 * for that iteration). A host compares X (or iterations per wall-clock second,
 * timestamping the console lines itself) protected vs unprotected. Note: the
 * guest clock stands still while QEMU has the VM stopped (checked with QMP
 * stop/cont under TCG: no catch-up burst of ticks after cont), so X excludes
 * checkpoint pauses; host-side wall-clock rates include them. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "ftd_console.h"

int main(int argc, char** argv) {
  long mib = argc > 1 ? atol(argv[1]) : 16;
  long passes = argc > 2 ? atol(argv[2]) : 10;
  if (mib <= 0 || passes <= 0) {
    console("ftd-bench bad arguments\n");
    return 2;
  }
  size_t words = ((size_t)mib << 20) / sizeof(uint64_t);
  uint64_t* buf = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) {
    console("ftd-bench cannot map %ld MiB\n", mib);
    return 1;
  }
  console("ftd-bench start mib=%ld passes=%ld\n", mib, passes);
  uint64_t acc = 1;
  for (unsigned long long iter = 1;; iter++) {
    uint64_t t0 = monotonic_ns();
    for (long p = 0; p < passes; p++) {
      /* Memory: stride through the buffer writing a running hash (dirties every
       * page). CPU: a multiply/xor chain per word. */
      for (size_t i = 0; i < words; i++) {
        acc = (acc ^ (buf[i] + i)) * 0x100000001b3ull;
        buf[i] = acc;
      }
    }
    uint64_t t1 = monotonic_ns();
    console("ftd-bench iter=%llu ms=%.1f chk=%04llx\n", iter, (double)(t1 - t0) / 1e6,
            (unsigned long long)(acc & 0xffff));
  }
}
