{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "skiff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, unless it already contains the chart name. */}}
{{- define "skiff.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "skiff.selectorLabels" -}}
app.kubernetes.io/name: {{ include "skiff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "skiff.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "skiff.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: skiff
{{- end }}

{{- define "skiff.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "skiff.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "skiff.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* host:port with IPv6 literals in brackets. Args: list HOST PORT. */}}
{{- define "skiff.hostPort" -}}
{{- $host := index . 0 | toString }}
{{- if and (contains ":" $host) (not (hasPrefix "[" $host)) }}
{{- printf "[%s]:%v" $host (index . 1) }}
{{- else }}
{{- printf "%s:%v" $host (index . 1) }}
{{- end }}
{{- end }}

{{/* The address the probes use: loopback when the listener binds every address. */}}
{{- define "skiff.probeHost" -}}
{{- $a := .Values.metrics.listenAddress | toString }}
{{- if has $a (list "0.0.0.0" "::" "[::]" "127.0.0.1") }}127.0.0.1{{ else if eq $a "::1" }}::1{{ else }}{{ $a }}{{ end }}
{{- end }}

{{/* skiff-agent's flags, one quoted YAML list item each; names are the contract in
docs/configuration.md. */}}
{{- define "skiff.agentArgs" -}}
{{- $v := .Values }}
{{- $args := list "--node-name=$(NODE_NAME)" }}
{{- $args = append $args (printf "--endpoint-ifaces=%s" (join "," $v.agent.endpointInterfaces)) }}
{{- $args = append $args (printf "--bpffs-root=%s" $v.agent.bpffsRoot) }}
{{- $args = append $args (printf "--api-socket=%s/agent.sock" (trimSuffix "/" $v.agent.runDir)) }}
{{- $args = append $args (printf "--ct-max=%d" (int64 $v.maps.ctMax)) }}
{{- $args = append $args (printf "--lb-map-max=%d" (int64 $v.maps.lbMapMax)) }}
{{- $args = append $args (printf "--lb-backends-max=%d" (int64 $v.maps.lbBackendsMax)) }}
{{- $args = append $args (printf "--lb-revnat-max=%d" (int64 $v.maps.lbRevnatMax)) }}
{{- $args = append $args (printf "--lb-affinity-max=%d" (int64 $v.maps.lbAffinityMax)) }}
{{- $args = append $args (printf "--socket-lb=%s" $v.agent.socketLB) }}
{{- $args = append $args (printf "--socket-lb-scope=%s" $v.agent.socketLBScope) }}
{{- $args = append $args (printf "--host-routing=%s" $v.agent.hostRouting) }}
{{- $args = append $args (printf "--ct-gc-interval=%d" (int64 $v.agent.ctGcInterval)) }}
{{- $args = append $args "--cgroup-root=/host/sys/fs/cgroup" }}
{{- $args = append $args (printf "--log-level=%s" $v.agent.logLevel) }}
{{- $args = append $args (printf "--log-format=%s" $v.agent.logFormat) }}
{{- if $v.k8sServiceHost }}
{{- $args = append $args (printf "--k8s-api-server=https://%s" (include "skiff.hostPort" (list $v.k8sServiceHost $v.k8sServicePort))) }}
{{- end }}
{{- $args = append $args (printf "--metrics-listen=%s" (include "skiff.hostPort" (list $v.metrics.listenAddress $v.metrics.port))) }}
{{- $args = append $args (printf "--healthz-listen=%s" (include "skiff.hostPort" (list $v.healthz.listenAddress $v.healthz.port))) }}
{{- range $v.agent.extraArgs }}
{{- $args = append $args (toString .) }}
{{- end }}
{{- range $args }}
- {{ . | quote }}
{{- end }}
{{- end }}
