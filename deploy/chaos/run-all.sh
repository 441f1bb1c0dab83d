#!/usr/bin/env bash
# Every chaos scenario in turn; one JSON line each; exit 1 if any failed.
dir=$(dirname "${BASH_SOURCE[0]}")
rc=0
for s in kill-primary-host kill-secondary-host partition-primary-secondary isolate-primary \
  kill-arbiter lossy-replication-link kill-primary-ftd kill-primary-ftd-fenced restart-primary-ftd \
  failover-reprotect-failback alone-then-reprotect; do
  "$dir/$s.sh" || rc=1
done
exit $rc
