#!/usr/bin/env bash
# Chaos: only the primary's ftd SIGKILLed, its QEMU survives without network: the secondary activates; the ftd restarted with --reattach afterwards is fenced and releases nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PrimaryDaemonKilledQemuSurvivesSecondaryTakesOver
