/* LD_PRELOAD library for the QEMU that ftd launches: creates a userfaultfd
 * inside QEMU (a uffd belongs to the mm that created it, so ftd cannot make
 * one for QEMU from outside) and leaves it at the fd number given in
 * $FTD_UFFD_FD, where ftd takes it with pidfd_getfd(). It does nothing else:
 * ftd registers and arms the uffd itself. Failures are reported on stderr
 * (QEMU's log) and leave QEMU running; ftd then falls back to scanning. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracking/uffd_preload_env.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

__attribute__((constructor)) static void ftd_uffd_preload_init(void) {
  const char* want = getenv(FTD_UFFD_FD_ENV);
  /* QEMU's own children (exec: migration, helpers) must not inherit this. */
  unsetenv("LD_PRELOAD");
  if (want == NULL) return;
  char* end = NULL;
  long target = strtol(want, &end, 10);
  unsetenv(FTD_UFFD_FD_ENV);
  if (end == want || *end != '\0' || target < 3 || target > 65535) {
    fprintf(stderr, "ftd-uffd-preload: bad %s=%s\n", FTD_UFFD_FD_ENV, want);
    return;
  }
  /* User-mode-only: allowed without CAP_SYS_PTRACE even when
   * vm.unprivileged_userfaultfd=0; write-protect tracking needs nothing more. */
  int fd = (int)syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "ftd-uffd-preload: userfaultfd: %s\n", strerror(errno));
    return;
  }
  if (fd != target) {
    if (dup3(fd, (int)target, O_CLOEXEC) < 0) {
      fprintf(stderr, "ftd-uffd-preload: dup3 to %ld: %s\n", target, strerror(errno));
      close(fd);
      return;
    }
    close(fd);
  }
  fprintf(stderr, "ftd-uffd-preload: userfaultfd at fd %ld\n", target);
}
