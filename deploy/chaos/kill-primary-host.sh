#!/usr/bin/env bash
# Chaos: the primary host (its ftd and QEMU) powered off: the secondary activates by itself.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PrimaryHostLossSecondaryActivatesByItself
