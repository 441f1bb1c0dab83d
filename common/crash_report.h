// A daemon that dies on a bug leaves the evidence in its log (stderr): an
// uncaught exception prints its what() and the stack with file:line
// (boost::stacktrace), a fatal signal prints the signal and the faulting PC
// (abseil's failure signal handler; abseil comes with gRPC). The process then
// dies as it would have.
#pragma once

namespace ftd {

// Call first thing in main(). No-op in sanitizer builds, whose own handlers
// report better.
void install_crash_report(const char* argv0);

}  // namespace ftd
