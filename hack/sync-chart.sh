#!/usr/bin/env bash
# hack/sync-chart.sh copies the generated CRDs and RBAC rules into the Helm chart, so
# config/ and charts/berth have one source and no hand-edited copies.
set -euo pipefail
cd "$(dirname "$0")/.."
chart=charts/berth
rm -rf "$chart/crds" && mkdir -p "$chart/crds" "$chart/files"
cp config/crd/bases/*.yaml "$chart/crds/"
cp config/rbac/role.yaml "$chart/files/manager-role.yaml"
