/* Console output for guest programs: their stdout is the serial console
 * (ttyS0), read by host-side tests. One write() per line so lines from
 * concurrently running guest programs never interleave mid-line. */
#ifndef FTD_CONSOLE_H
#define FTD_CONSOLE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void console(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void console(const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 1) n = sizeof line - 1;
  (void)!write(STDOUT_FILENO, line, (size_t)n);
}

static inline uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* FTD_CONSOLE_H */
