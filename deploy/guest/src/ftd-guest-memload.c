/* ftd-guest-memload <MiB> <pages_per_sec>: a memory-writing load. Allocates and
 * touches <MiB>, then dirties <pages_per_sec> pseudo-random pages per second in
 * 10 ms batches (64 bytes at a random offset per page, so a page's content
 * really changes, which is what a checkpoint diff sees). Prints a stats line
 * every 5 s: "ftd-memload written=<pages> mib=<MiB> rate=<pages/s>". */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "ftd_console.h"

#define PAGE 4096u

static uint64_t xorshift(uint64_t* s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    console("usage: ftd-guest-memload <MiB> <pages_per_sec>\n");
    return 2;
  }
  long mib = atol(argv[1]);
  long rate = atol(argv[2]);
  if (mib <= 0 || rate < 0) {
    console("ftd-memload bad arguments mib=%s rate=%s\n", argv[1], argv[2]);
    return 2;
  }
  size_t size = (size_t)mib << 20;
  unsigned char* mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    console("ftd-memload cannot map %ld MiB\n", mib);
    return 1;
  }
  size_t pages = size / PAGE;
  for (size_t p = 0; p < pages; p++) mem[p * PAGE] = (unsigned char)p;
  console("ftd-memload start mib=%ld rate=%ld\n", mib, rate);

  uint64_t seed = 0x9e3779b97f4a7c15ull, written = 0, value = 0;
  const long batch_ns = 10 * 1000000L;
  double carry = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  uint64_t last_report = monotonic_ns();
  for (;;) {
    carry += (double)rate / 100.0;
    long n = (long)carry;
    carry -= (double)n;
    for (long i = 0; i < n; i++) {
      uint64_t r = xorshift(&seed);
      uint64_t* p = (uint64_t*)(mem + (r % pages) * PAGE + ((r >> 40) % (PAGE / 64)) * 64);
      for (int w = 0; w < 8; w++) p[w] = ++value;
      written++;
    }
    next.tv_nsec += batch_ns;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    uint64_t now = monotonic_ns();
    if (now - last_report >= 5000000000ull) {
      last_report = now;
      console("ftd-memload written=%llu mib=%ld rate=%ld\n", (unsigned long long)written, mib,
              rate);
    }
  }
}
