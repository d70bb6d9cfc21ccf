{{/*
berth.fullname prefixes every object's name: fullnameOverride, else the release name
when it already contains the chart name (release "berth" gives "berth-manager"), else
"<release>-<chart>".
*/}}
{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* berth.name is the app.kubernetes.io/name label. */}}
{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* berth.labels go on every object the chart renders. */}}
{{- define "berth.labels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
berth.selectorLabels select one component's pods; call with (dict "ctx" $ "component"
"manager"). They must never change after the first install: a Deployment's or
DaemonSet's selector is immutable.
*/}}
{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* berth.componentLabels: berth.labels plus the component; same argument as above. */}}
{{- define "berth.componentLabels" -}}
{{ include "berth.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* berth.image is the manager's image; the tag defaults to the chart's appVersion. */}}
{{- define "berth.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* berth.agentImage is the agent's image (the Dockerfile's `agent` target). */}}
{{- define "berth.agentImage" -}}
{{ .Values.agent.image.repository }}:{{ .Values.agent.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
berth.agentHTTPHost and berth.agentHTTPPort split agent.httpBindAddress
("127.0.0.1:51678", "[::1]:51678", ":51678") for the readiness probe. The agent runs
in the node's network namespace, so the kubelet reaches it on the address it binds;
a wildcard bind is probed on 127.0.0.1.
*/}}
{{- define "berth.agentHTTPPort" -}}
{{- regexReplaceAll "^.*:" (toString .Values.agent.httpBindAddress) "" -}}
{{- end -}}
{{- define "berth.agentHTTPHost" -}}
{{- $host := regexReplaceAll ":[0-9]+$" (toString .Values.agent.httpBindAddress) "" | trimPrefix "[" | trimSuffix "]" -}}
{{- if has $host (list "" "0.0.0.0" "::") -}}
127.0.0.1
{{- else -}}
{{ $host }}
{{- end -}}
{{- end -}}

{{/*
berth.rules renders the rules of a role file that `make manifests` generated and
hack/sync-chart.sh copied into files/; fails the render if the file holds none.
*/}}
{{- define "berth.rules" -}}
{{- $role := .ctx.Files.Get .file | fromYaml -}}
{{- if not $role.rules -}}
{{- fail (printf "%s has no rules: run `make manifests`" .file) -}}
{{- end -}}
{{- toYaml $role.rules -}}
{{- end -}}

{{/*
berth.apiServicePort is the API Service's port: api.service.port, else 443 with TLS
and 80 without. berth.apiScheme is https or http.
*/}}
{{- define "berth.apiServicePort" -}}
{{- if .Values.api.service.port -}}
{{ .Values.api.service.port }}
{{- else if .Values.api.tls.enabled -}}
443
{{- else -}}
80
{{- end -}}
{{- end -}}
{{- define "berth.apiScheme" -}}
{{ ternary "https" "http" (and .Values.api.tls.enabled true) }}
{{- end -}}

{{/*
berth.apiValidate fails the render on API values `berth api` would refuse, naming
the value.
*/}}
{{- define "berth.apiValidate" -}}
{{- if ne (toString .Values.api.auth) "sigv4" -}}
{{- fail (printf "api.auth: %q is not offered by the chart; only sigv4 (--auth=none, every call made as the server itself, is for local experiments)" (toString .Values.api.auth)) -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]{12}$" (toString .Values.api.accountId)) -}}
{{- fail (printf "api.accountId: %q is not 12 digits; quote it (\"000000000000\")" (toString .Values.api.accountId)) -}}
{{- end -}}
{{- if not .Values.api.region -}}
{{- fail "api.region must not be empty" -}}
{{- end -}}
{{- if and .Values.api.tls.enabled (not .Values.api.tls.secretName) -}}
{{- fail "api.tls.secretName: api.tls.enabled needs the name of a kubernetes.io/tls Secret in the release namespace" -}}
{{- end -}}
{{- end -}}

{{/*
berth.agentUser is the Kubernetes user of the agent DaemonSet's ServiceAccount: the
admission policy's DaemonSet identity and the gateway's --gateway-daemonset-user,
whose tokens name the node they are bound to. One definition for both: were they to
differ, the gateway would refuse the agents the policy admits.
*/}}
{{- define "berth.agentUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "berth.fullname" . }}-agent
{{- end -}}

{{/*
berth.gatewayHost is the in-cluster DNS name of the gateway's Service, the one the
agents dial. berth.gatewayDNSNames are the names its generated certificate holds.
*/}}
{{- define "berth.gatewayHost" -}}
{{ include "berth.fullname" . }}-gateway.{{ .Release.Namespace }}.svc
{{- end -}}
{{- define "berth.gatewayDNSNames" -}}
{{- $svc := printf "%s-gateway" (include "berth.fullname" .) -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- toJson (concat $names .Values.gateway.tls.extraDNSNames) -}}
{{- end -}}

{{/* berth.gatewayTLSSecret is the name of the Secret the manager serves the gateway with. */}}
{{- define "berth.gatewayTLSSecret" -}}
{{- .Values.gateway.tls.existingSecret | default (printf "%s-gateway-tls" (include "berth.fullname" .)) -}}
{{- end -}}

{{/*
berth.gatewayTLS is the gateway's TLS material as JSON: "ca", the CA certificate (PEM)
the agents check the gateway against, and, unless gateway.tls.existingSecret names
the Secret, "crt" and "key" for the Secret the chart makes. It is made once per
render and kept in .Values, because the manager's Secret, the agents' ConfigMap and
the DaemonSet's checksum of it are rendered by different templates and must agree.
The Secret of an earlier release is kept (lookup) while it was made for the same
names ("sans" below); a render without a cluster (helm template) makes a new one.
*/}}
{{- define "berth.gatewayTLS" -}}
{{- if not (hasKey .Values "berthGatewayTLSRendered") -}}
{{- $_ := set .Values "berthGatewayTLSRendered" (include "berth.gatewayTLSMake" . | fromJson) -}}
{{- end -}}
{{- toJson .Values.berthGatewayTLSRendered -}}
{{- end -}}
{{- define "berth.gatewayTLSMake" -}}
{{- $tls := .Values.gateway.tls -}}
{{- if $tls.existingSecret -}}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (toString $tls.caBundle)) -}}
{{- fail "gateway.tls.caBundle: gateway.tls.existingSecret needs the PEM certificate of the CA that signed it; the agents check the gateway against it" -}}
{{- end -}}
{{- toJson (dict "ca" $tls.caBundle) -}}
{{- else -}}
{{- if $tls.caBundle -}}
{{- fail "gateway.tls.caBundle is the CA of gateway.tls.existingSecret; without it the chart makes its own CA: set both or neither" -}}
{{- end -}}
{{- $names := include "berth.gatewayDNSNames" . | fromJsonArray -}}
{{- $sans := concat $names $tls.extraIPAddresses | join "," -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "berth.gatewayTLSSecret" .) -}}
{{- $oldData := dig "data" (dict) $old -}}
{{- if and (eq (dig "metadata" "annotations" "ecs.berth.dev/gateway-sans" "" $old) $sans) (get $oldData "tls.crt") (get $oldData "tls.key") (get $oldData "ca.crt") -}}
{{- toJson (dict "ca" (b64dec (get $oldData "ca.crt")) "crt" (b64dec (get $oldData "tls.crt")) "key" (b64dec (get $oldData "tls.key")) "sans" $sans) -}}
{{- else -}}
{{- $ca := genCA (printf "%s-gateway-ca" (include "berth.fullname" .)) (int $tls.validityDays) -}}
{{- $cert := genSignedCert (printf "%s-gateway" (include "berth.fullname" .)) $tls.extraIPAddresses $names (int $tls.validityDays) $ca -}}
{{- toJson (dict "ca" $ca.Cert "crt" $cert.Cert "key" $cert.Key "sans" $sans) -}}
{{- end -}}
{{- end -}}
{{- end -}}
