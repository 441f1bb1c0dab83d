/* ftd-guest-diskload <device> <MiB> <secs>: a fio-like disk load for
 * bench/disk_bench, on the raw block device (no filesystem: what is measured
 * is the block path, QEMU's mirror included, not ext4). It runs rounds
 * forever; each round has three phases of <secs> seconds (guest clock):
 *   idle    nothing (the bench samples checkpoint pauses without disk load)
 *   rand4k  4 KiB O_DIRECT writes at random 4 KiB-aligned offsets in the
 *           first <MiB> MiB, each followed by fdatasync (one FLUSH each)
 *   seq1m   1 MiB O_DIRECT writes in order (wrapping), one fdatasync at the end
 * and prints, one line each (the host stamps them, src/ftd_console.h):
 *   ftd-diskload round=R phase=P start
 *   ftd-diskload round=R phase=rand4k ops=N us=T p50_us=A p99_us=B max_us=C
 *   ftd-diskload round=R phase=seq1m ops=N us=T bytes=B p50_us=A p99_us=B max_us=C
 * us = the phase's guest time, final fdatasync included. The guest clock
 * stands still while QEMU has the VM stopped, so guest times leave out
 * checkpoint pauses; the host's stamps of the start and result lines include
 * them. Latencies are per write (+ its fdatasync for rand4k). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "ftd_console.h"

enum { kMaxOps = 1 << 20, kSmall = 4096, kLarge = 1 << 20 };

static uint32_t lat_us[kMaxOps];

static int by_value(const void* a, const void* b) {
  uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return x < y ? -1 : x > y;
}

static uint32_t percentile(uint32_t* v, unsigned n, unsigned pct) {
  if (n == 0) return 0;
  unsigned i = (unsigned)(((unsigned long long)n * pct + 99) / 100);
  return v[i == 0 ? 0 : i - 1];
}

static uint64_t next_random(uint64_t* s) { /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* One timed phase; returns the number of writes, or -1 on an I/O error. */
static long run_phase(int fd, char* buf, int random, uint64_t region, unsigned secs,
                      unsigned long long round, uint64_t* phase_us) {
  const size_t len = random ? kSmall : kLarge;
  const uint64_t slots = region / len;
  uint64_t seed = 0x9e3779b97f4a7c15ull ^ (round + 1), pos = 0;
  const uint64_t t0 = monotonic_ns(), end = t0 + (uint64_t)secs * 1000000000ull;
  unsigned n = 0;
  for (uint64_t now = t0; now < end; now = monotonic_ns()) {
    const uint64_t slot = random ? next_random(&seed) % slots : pos++ % slots;
    memcpy(buf, &now, sizeof now); /* every write carries new, non-zero data */
    if (pwrite(fd, buf, len, (off_t)(slot * len)) != (ssize_t)len) return -1;
    if (random && fdatasync(fd) != 0) return -1;
    const uint64_t us = (monotonic_ns() - now) / 1000;
    if (n < kMaxOps) lat_us[n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  }
  if (fdatasync(fd) != 0) return -1;
  *phase_us = (monotonic_ns() - t0) / 1000;
  return n;
}

int main(int argc, char** argv) {
  if (argc != 4 || atoi(argv[2]) <= 0 || atoi(argv[3]) <= 0) {
    console("ftd-diskload usage: ftd-guest-diskload <device> <MiB> <secs>\n");
    return 2;
  }
  const uint64_t region = (uint64_t)atoi(argv[2]) << 20;
  const unsigned secs = (unsigned)atoi(argv[3]);
  /* virtio-blk probes asynchronously: wait for the device node. */
  for (int i = 0; i < 100 && access(argv[1], F_OK) != 0; ++i) usleep(50000);
  int fd = open(argv[1], O_RDWR | O_DIRECT);
  char* buf = NULL;
  if (fd < 0 || posix_memalign((void**)&buf, kSmall, kLarge) != 0) {
    console("ftd-diskload open %s failed errno=%d\n", argv[1], errno);
    return 1;
  }
  memset(buf, 0xa5, kLarge);
  console("ftd-diskload ready device=%s mib=%s secs=%u\n", argv[1], argv[2], secs);
  for (unsigned long long round = 1;; ++round) {
    console("ftd-diskload round=%llu phase=idle start\n", round);
    sleep(secs);
    for (int random = 1; random >= 0; --random) {
      const char* name = random ? "rand4k" : "seq1m";
      console("ftd-diskload round=%llu phase=%s start\n", round, name);
      uint64_t us = 0;
      long n = run_phase(fd, buf, random, region, secs, round, &us);
      if (n < 0) {
        console("ftd-diskload round=%llu phase=%s error errno=%d\n", round, name, errno);
        sleep(secs);
        continue;
      }
      uint32_t max = 0;
      for (long i = 0; i < n; ++i) max = lat_us[i] > max ? lat_us[i] : max;
      qsort(lat_us, (size_t)n, sizeof lat_us[0], by_value);
      console("ftd-diskload round=%llu phase=%s ops=%ld us=%llu bytes=%llu p50_us=%u p99_us=%u "
              "max_us=%u\n",
              round, name, n, (unsigned long long)us,
              (unsigned long long)n * (random ? kSmall : kLarge),
              percentile(lat_us, (unsigned)n, 50), percentile(lat_us, (unsigned)n, 99), max);
    }
  }
}
