#!/usr/bin/env bash
# hack/sync-chart.sh copies the generated CRDs and RBAC rules into the Helm chart, so
# config/ and charts/berth have one source and no hand-edited copies:
#   config/crd/bases/*.yaml     -> charts/berth/crds/ (installed by helm, never upgraded)
#   config/rbac/role.yaml       -> charts/berth/files/manager-role.yaml (manager ClusterRole)
#   config/rbac/agent/role.yaml -> charts/berth/files/agent-role.yaml   (agent ClusterRole)
# The chart's templates read only the rules of the role files; names, labels and
# bindings are the chart's.
set -euo pipefail
cd "$(dirname "$0")/.."
chart=charts/berth
rm -rf "$chart/crds" && mkdir -p "$chart/crds" "$chart/files"
cp config/crd/bases/*.yaml "$chart/crds/"
cp config/rbac/role.yaml "$chart/files/manager-role.yaml"
cp config/rbac/agent/role.yaml "$chart/files/agent-role.yaml"
