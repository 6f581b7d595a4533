{{/* Names, labels and the pieces every workload shares. */}}

{{- define "auditlog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auditlog.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "auditlog.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "auditlog.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: <fullname>-<component>. Call with (list $ "writer"). */}}
{{- define "auditlog.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "auditlog.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auditlog.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "auditlog.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "auditlog.labels" -}}
{{- $root := index . 0 -}}
{{ include "auditlog.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: auditlog
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image: repository:tag, or repository@digest when a digest is given. Never latest. */}}
{{- define "auditlog.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: pin a version (or a digest), not latest" -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* One environment variable from a secret: (list NAME {name, key}). */}}
{{- define "auditlog.secretEnv" -}}
{{- $name := index . 0 -}}
{{- $ref := index . 1 -}}
{{- if or (not $ref.name) (not $ref.key) -}}
{{- fail (printf "secretEnv.%s: give the existing Secret's name and key" $name) -}}
{{- end }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end -}}

{{/*
The settings of a process (AUDITLOG_*): connections, then the chart-wide env and secretEnv,
then the component's. Secrets only by reference (secretKeyRef to an existing Secret).
Call with (list $ "writer").
*/}}
{{- define "auditlog.env" -}}
{{- $root := index . 0 -}}
{{- $component := index $root.Values (index . 1) | default dict -}}
{{- $clickhouse := $root.Values.clickhouse -}}
- name: AUDITLOG_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap: the brokers, host:port comma separated" $root.Values.kafka.bootstrap | quote }}
{{- if contains "@" ($clickhouse.url | default "") }}
{{- fail "clickhouse.url: no credentials in values; put the URL with user:password@ in a Secret (clickhouse.existingSecret)" }}
{{- end }}
{{- if $clickhouse.existingSecret.name }}
{{- include "auditlog.secretEnv" (list "AUDITLOG_CLICKHOUSE_URL" $clickhouse.existingSecret) }}
{{- else }}
- name: AUDITLOG_CLICKHOUSE_URL
  value: {{ required "clickhouse.url" $clickhouse.url | quote }}
{{- end }}
- name: AUDITLOG_METRICS_HOST
  value: "0.0.0.0"
- name: AUDITLOG_METRICS_PORT
  value: {{ $root.Values.metrics.port | quote }}
- name: AUDITLOG_EVENTS_TOPIC
  value: {{ $root.Values.kafka.eventsTopic | quote }}
- name: AUDITLOG_TOPIC_PARTITIONS
  value: {{ $root.Values.kafka.eventsPartitions | quote }}
{{- range $name, $value := $root.Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $name, $ref := $root.Values.secretEnv }}
{{- include "auditlog.secretEnv" (list $name $ref) }}
{{- end }}
{{- range $name, $value := $component.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $name, $ref := $component.secretEnv }}
{{- include "auditlog.secretEnv" (list $name $ref) }}
{{- end }}
{{- end -}}

{{- define "auditlog.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "auditlog.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* DNS, for every NetworkPolicy's egress. */}}
{{- define "auditlog.egressDns" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.peers | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{- define "auditlog.egressKafka" -}}
- to:
    {{- required "kafka.peers: where the brokers are (NetworkPolicy peers)" .Values.kafka.peers | toYaml | nindent 4 }}
  ports:
    {{- range .Values.kafka.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}

{{- define "auditlog.egressClickhouse" -}}
- to:
    {{- required "clickhouse.peers: where ClickHouse is (NetworkPolicy peers)" .Values.clickhouse.peers | toYaml | nindent 4 }}
  ports:
    {{- range .Values.clickhouse.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}
