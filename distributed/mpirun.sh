#!/usr/bin/env bash
# distributed/mpirun.sh: mpirun with the options a run on this kind of machine needs, in
# one place (the tests, bench/run_distributed.sh and docs/distributed.md all use it):
#
#   bash distributed/mpirun.sh -np 2 build/diffuse train ddpm ... --distributed
#
# Every argument goes to Open MPI's mpirun, after these:
#   --allow-run-as-root  when run as root (containers, CI): mpirun refuses root otherwise
#   --oversubscribe      more ranks than cores is allowed (2 ranks on a 2-core machine
#                        already counts as full; a laptop test with -np 4 should still run)
#   --bind-to none       unless the arguments choose a binding: Open MPI binds each rank
#                        to ONE core by default (np <= 2), which would put all of a rank's
#                        OpenMP threads on that core; unbound, the OS spreads them. With
#                        OMP_NUM_THREADS=1 per rank, `--bind-to core` is fine (and steadier).
# The environment reaches every rank on this machine (OMP_NUM_THREADS, TD_DIST_TIMEOUT, ...);
# for other machines (--hostfile) name each variable with -x VAR (docs/distributed.md).
#
# Containers where shared-memory transfers fail with "Read -1, expected ..., errno = 1"
# (no ptrace between processes, so no cross-memory attach): export
#   OMPI_MCA_btl_vader_single_copy_mechanism=none
# (slower for large messages; not needed on this machine).
set -euo pipefail
command -v mpirun > /dev/null || {
  echo "mpirun.sh: mpirun not found: run \`bash scripts/install-deps.sh --mpi\`, then \`make clean && make\`" >&2
  exit 127
}
opts=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && opts+=(--allow-run-as-root)
case " $* " in
  *" --bind-to "*|*" -bind-to "*) ;;
  *) opts+=(--bind-to none) ;;
esac
exec mpirun "${opts[@]}" "$@"
