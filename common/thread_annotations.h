// Clang thread-safety annotations (-Wthread-safety). They document which lock
// guards which member and which functions need it held; the clang build in the
// test command turns a violation into a compile error. Under GCC they vanish.
#pragma once

#if defined(__clang__)
#define FTD_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FTD_THREAD_ANNOTATION(x)
#endif

#define FTD_CAPABILITY(x) FTD_THREAD_ANNOTATION(capability(x))
#define FTD_SCOPED_CAPABILITY FTD_THREAD_ANNOTATION(scoped_lockable)
#define FTD_GUARDED_BY(x) FTD_THREAD_ANNOTATION(guarded_by(x))
#define FTD_PT_GUARDED_BY(x) FTD_THREAD_ANNOTATION(pt_guarded_by(x))
#define FTD_REQUIRES(...) FTD_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FTD_EXCLUDES(...) FTD_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FTD_ACQUIRE(...) FTD_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FTD_RELEASE(...) FTD_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FTD_TRY_ACQUIRE(...) FTD_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define FTD_RETURN_CAPABILITY(x) FTD_THREAD_ANNOTATION(lock_returned(x))
#define FTD_NO_THREAD_SAFETY_ANALYSIS FTD_THREAD_ANNOTATION(no_thread_safety_analysis)
