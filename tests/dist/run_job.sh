#!/usr/bin/env bash
# tests/dist/run_job.sh LIMIT EXPECT PATTERN COMMAND... — runs a distributed job (COMMAND: mpirun ...) that
# must end by itself within LIMIT seconds: EXPECT "fail" wants a non-zero exit status, "ok" wants 0; and
# PATTERN (grep -E, over the output joined into one line) must appear in its output. A job still running after LIMIT seconds has hung: failure.
set -u
limit="$1" expect="$2" pattern="$3"
shift 3
start=$(date +%s)
out="$(timeout --kill-after=10 "$limit" "$@" 2>&1)"
rc=$?
elapsed=$(($(date +%s) - start))
printf '%s\n' "$out"
echo "run_job: exit status $rc after ${elapsed}s"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "run_job: FAILED: the job was still running after ${limit}s (a rank hung)"
  exit 1
fi
if [ "$expect" = fail ] && [ "$rc" -eq 0 ]; then
  echo "run_job: FAILED: the job succeeded (exit status 0) though a rank failed"
  exit 1
fi
if [ "$expect" = ok ] && [ "$rc" -ne 0 ]; then
  echo "run_job: FAILED: exit status $rc"
  exit 1
fi
if ! tr '\n' ' ' <<<"$out" | grep -Eq -- "$pattern"; then
  echo "run_job: FAILED: the output lacks /$pattern/"
  exit 1
fi
echo "run_job: OK ($expect in ${elapsed}s)"
