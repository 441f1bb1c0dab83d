#!/usr/bin/env bash
# Chaos: only the primary's ftd SIGKILLed and restarted with --reattach before the secondary fails over: the same QEMU (no reboot) is protected again, and a later primary host loss still fails over.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario PrimaryDaemonRestart.ReattachesToTheRunningGuestThenStillFailsOver
