#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (default 10s), so CI
# exercises the fuzzers on every change and new targets join without editing a list.
# A failing input is written under the package's testdata/fuzz/<Target>/: commit it
# with the fix, and it stays in the seed corpus that `go test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
mapfile -t files < <(git ls-files -co --exclude-standard '*_test.go' | grep -v '^hack/tools/' | xargs grep -l '^func Fuzz[A-Za-z0-9_]*(' || true)
for f in "${files[@]}"; do
  pkg="./$(dirname "$f")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "fuzz: $target in $pkg for $FUZZTIME"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"
  done
done
