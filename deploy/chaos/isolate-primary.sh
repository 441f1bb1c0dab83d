#!/usr/bin/env bash
# Chaos: the primary cut from everyone: it holds output, the secondary activates after the lease, the primary fences itself when it comes back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PrimaryIsolatedSecondaryTakesOverPrimaryFences
