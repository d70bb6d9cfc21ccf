#!/usr/bin/env bash
# hack/sync-chart.sh copies the generated CRDs and RBAC rules into the Helm chart, so
# config/ and charts/berth have one source and no hand-edited copies:
#   config/crd/bases/*.yaml     -> charts/berth/crds/ (installed by helm, never upgraded)
#   config/rbac/role.yaml       -> charts/berth/files/manager-role.yaml (manager ClusterRole)
#                               and charts/berth/files/manager-ca-role.yaml (its Role in
#                               kube-system: the cluster's client CA, for the gateway's authn)
#   config/rbac/agent/role.yaml -> charts/berth/files/agent-role.yaml   (agent ClusterRole)
#                               and charts/berth/files/agent-ca-role.yaml (its Role in
#                               kube-system: the cluster's client CA, for exec's authn)
#   config/rbac/api/role.yaml   -> charts/berth/files/api-role.yaml     (`berth api`'s ClusterRole)
#                               and charts/berth/files/api-secrets-role.yaml (its Role for
#                               the credential Secrets, rendered in the release namespace)
#   config/rbac/api/user_role.yaml -> charts/berth/files/ecs-user-role.yaml (berth-ecs-user,
#                               what an ECS API credential's user is bound to)
#   config/admission/*.yaml     -> charts/berth/files/admission/        (agent admission policy)
#   config/warnings/*.yaml      -> charts/berth/files/warnings/         (TaskDefinition warnings)
# The chart's templates read only the rules of the role files; names, labels and
# bindings are the chart's. The admission policy is rendered as it is, with the
# chart's names, labels and agent ServiceAccount.
set -euo pipefail
cd "$(dirname "$0")/.."
chart=charts/berth
rm -rf "$chart/crds" && mkdir -p "$chart/crds" "$chart/files"
cp config/crd/bases/*.yaml "$chart/crds/"

# document KIND FILE prints the YAML document of FILE whose kind is KIND (controller-gen
# writes a ClusterRole and, for namespaced markers, a Role into one file), and fails
# when there is none.
document() {
	awk -v kind="$1" '
		/^---$/ { if (keep) printf "%s", doc; doc = ""; keep = 0; next }
		{ doc = doc $0 "\n"; if ($0 == "kind: " kind) keep = found = 1 }
		END { if (keep) printf "%s", doc; exit !found }' "$2" ||
		{ echo "sync-chart: no $1 in $2" >&2; return 1; }
}
document ClusterRole config/rbac/role.yaml >"$chart/files/manager-role.yaml"
document Role config/rbac/role.yaml >"$chart/files/manager-ca-role.yaml"
document ClusterRole config/rbac/agent/role.yaml >"$chart/files/agent-role.yaml"
document Role config/rbac/agent/role.yaml >"$chart/files/agent-ca-role.yaml"
document ClusterRole config/rbac/api/role.yaml >"$chart/files/api-role.yaml"
document Role config/rbac/api/role.yaml >"$chart/files/api-secrets-role.yaml"
cp config/rbac/api/user_role.yaml "$chart/files/ecs-user-role.yaml"
rm -rf "$chart/files/admission" && mkdir -p "$chart/files/admission"
for f in config/admission/*.yaml; do
	[ "$(basename "$f")" = kustomization.yaml ] || cp "$f" "$chart/files/admission/"
done
rm -rf "$chart/files/warnings" && mkdir -p "$chart/files/warnings"
for f in config/warnings/*.yaml; do
	[ "$(basename "$f")" = kustomization.yaml ] || cp "$f" "$chart/files/warnings/"
done
