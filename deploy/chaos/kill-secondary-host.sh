#!/usr/bin/env bash
# Chaos: the secondary host powered off: the primary runs alone (degraded), output flows.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.SecondaryHostLossPrimaryRunsAlone
