#!/usr/bin/env bash
# Chaos: only the primary's ftd SIGKILLed, its QEMU survives without network: the secondary activates.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PrimaryDaemonKilledQemuSurvivesSecondaryTakesOver
