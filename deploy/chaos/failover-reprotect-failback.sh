#!/usr/bin/env bash
# Chaos: the primary host dies, the VM fails over; the host returns as a fresh
# secondary, `ftctl protect --peer` protects the VM to it, then the new
# primary's host dies and the VM fails back automatically; one TCP stream
# survives both.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.ReprotectToReturningHostThenFailBack
