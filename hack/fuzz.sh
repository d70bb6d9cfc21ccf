#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (default 10s), so CI
# exercises the fuzzers on every change and new targets join without editing a list.
# A failing input is written under the package's testdata/fuzz/<Target>/: commit it
# with the fix, and it stays in the seed corpus that `go test` runs.
#
# Go's fuzzing coordinator can fail a run whose -fuzztime ends while a starved worker
# is mid-call, printing only "context deadline exceeded" and writing no input
# (golang/go#75804; seen here on 2 busy cores). Such a run, and only such a run, is
# tried once more: a real finding always writes its failing input, and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}

# fuzz_one runs one target; it prints the output and returns go test's status.
fuzz_one() {
  local pkg=$1 target=$2 out status
  out=$(mktemp)
  set +e
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ] && deadline_race "$out"; then
    status=75 # tempfail: retry
  fi
  rm -f "$out"
  return "$status"
}

# deadline_race tells whether a failed run's output is the coordinator's race: its
# only failure line is "context deadline exceeded", with no failing input, panic or
# test error.
deadline_race() {
  grep -q '^    context deadline exceeded$' "$1" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$1"
}

mapfile -t files < <(git ls-files -co --exclude-standard '*_test.go' | grep -v '^hack/tools/' | xargs grep -l '^func Fuzz[A-Za-z0-9_]*(' || true)
for f in "${files[@]}"; do
  pkg="./$(dirname "$f")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "fuzz: $target in $pkg for $FUZZTIME"
    status=0
    fuzz_one "$pkg" "$target" || status=$?
    if [ "$status" -eq 75 ]; then
      echo "fuzz: $target stopped on Go's fuzztime deadline race without an input; running it again"
      status=0 # the retry's own status decides, not the first run's
      fuzz_one "$pkg" "$target" || status=$?
      [ "$status" -eq 75 ] && status=1
    fi
    [ "$status" -eq 0 ] || exit "$status"
  done
done
