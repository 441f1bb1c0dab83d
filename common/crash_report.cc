#include "common/crash_report.h"

#include <absl/debugging/failure_signal_handler.h>
#include <absl/debugging/symbolize.h>

#include <boost/stacktrace.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

namespace ftd {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FTD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FTD_SANITIZED 1
#endif
#endif

#ifndef FTD_SANITIZED
namespace {

// std::terminate runs on the failing thread in normal context, where the
// unwinder walks every frame (abseil's signal-time unwinder stops at the
// first frame without a frame pointer).
[[noreturn]] void report_and_abort() {
  std::string what = "no active exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = std::string("uncaught exception: ") + ex.what();
    } catch (...) {
      what = "uncaught exception of a non-std type";
    }
  }
  std::cerr << "*** ftd crash: std::terminate: " << what << "\n";
  // boost walks the frames (DWARF unwind info); abseil names them from the
  // ELF symbol table, position-independent executables included (boost's
  // own addr2line backend gets PIE addresses wrong in Debian 12's 1.74).
  int i = 0;
  for (const boost::stacktrace::frame& f : boost::stacktrace::stacktrace()) {
    char name[1024];
    const void* pc = f.address();
    const bool named = absl::Symbolize(pc, name, sizeof name);
    std::cerr << "  #" << i++ << " " << pc << " " << (named ? name : "(unknown)") << "\n";
  }
  std::cerr << std::flush;
  std::signal(SIGABRT, SIG_DFL);  // die of the abort itself, not again in a handler
  std::abort();
}

}  // namespace
#endif

void install_crash_report(const char* argv0) {
#ifndef FTD_SANITIZED
  std::set_terminate(report_and_abort);
  // Fatal signals (SIGSEGV, SIGBUS, ...): the signal and the faulting PC.
  absl::InitializeSymbolizer(argv0);
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions{});
#else
  (void)argv0;
#endif
}

}  // namespace ftd
