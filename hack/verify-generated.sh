#!/usr/bin/env bash
# hack/verify-generated.sh fails when the committed generated files (deepcopy, CRDs,
# RBAC, the Helm chart's copies) differ from what the generators produce now. It
# compares against the working tree, not git, so it also works with uncommitted edits.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(apis/v1alpha1/zz_generated.deepcopy.go apis/applyconfiguration config/crd/bases config/rbac/role.yaml config/rbac/agent config/rbac/api/role.yaml charts/berth/crds charts/berth/files)
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
for p in "${paths[@]}"; do
	[ -e "$p" ] && mkdir -p "$snap/$(dirname "$p")" && cp -r "$p" "$snap/$p"
done
make -s generate manifests >/dev/null
stale=0
for p in "${paths[@]}"; do
	if ! diff -r -q "$snap/$p" "$p" >/dev/null 2>&1; then
		echo "stale generated file(s): $p" >&2
		diff -r -u "$snap/$p" "$p" | head -40 >&2 || true
		stale=1
	fi
done
if [ "$stale" = 1 ]; then
	echo "run 'make generate manifests' and commit the result" >&2
	exit 1
fi
echo "generated files are up to date"
