#!/usr/bin/env bash
# Chaos: the secondary host dies, the primary runs alone; the host returns
# with its stale replica and `ftctl protect` resynchronises it: protected
# again, the stream intact.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_scenario AutoFailover.PrimaryRanAloneReprotectedToReturningSecondary
