#!/usr/bin/env bash
# Chaos: ftd-witness killed: nothing changes; restarted from its state file it still arbitrates a later primary loss.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.ArbiterLossChangesNothing
