#!/usr/bin/env bash
# Chaos: only the primary's ftd SIGKILLed, with a fencing command configured on the secondary: it powers the primary host off (deploy/fence/kill-netns-host.sh: the orphaned QEMU dies) and only then activates.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailoverFenced.PrimaryDaemonKilledSecondaryFencesTheOrphanedQemuThenActivates
