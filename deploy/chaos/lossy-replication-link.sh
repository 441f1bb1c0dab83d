#!/usr/bin/env bash
# Chaos: 5 % packet loss between primary and secondary (nftables; this kernel has no netem): stays protected, no failover.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.LossyReplicationLinkChangesNothing
