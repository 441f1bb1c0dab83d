/* The contract between ftd and libftd_uffd_preload.so (C and C++). */
#ifndef FTD_TRACKING_UFFD_PRELOAD_ENV_H
#define FTD_TRACKING_UFFD_PRELOAD_ENV_H

/* Environment variable naming the fd number the library puts the uffd at. */
#define FTD_UFFD_FD_ENV "FTD_UFFD_FD"
/* Default fd number: high enough that QEMU never gets it from open() before
 * the constructor runs, below the usual RLIMIT_NOFILE soft limit of 1024. */
#define FTD_UFFD_DEFAULT_FD 1000

#endif
