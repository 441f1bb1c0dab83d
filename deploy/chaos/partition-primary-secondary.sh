#!/usr/bin/env bash
# Chaos: primary<->secondary cut, witness reachable from both: the primary keeps the VM, the secondary never activates (not even after the heal).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PartitionWithWitnessReachablePrimaryKeepsTheVm
