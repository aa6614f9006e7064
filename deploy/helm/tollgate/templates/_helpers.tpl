{{/*
Names, labels and lookups shared by the tollgate chart's templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's object name: the release name, with the chart name unless it holds it. */}}
{{- define "tollgate.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "tollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ include "tollgate.chart" . }}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tollgate
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image, tag defaulting to the chart's appVersion. */}}
{{- define "tollgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the Redis URL: an existing one, or the chart's. */}}
{{- define "tollgate.redisSecretName" -}}
{{- default (include "tollgate.fullname" .) .Values.redis.existingSecret }}
{{- end }}

{{/* The Secret holding the admin token: an existing one, or the chart's. */}}
{{- define "tollgate.adminSecretName" -}}
{{- default (include "tollgate.fullname" .) .Values.adminToken.existingSecret }}
{{- end }}

{{/* The key of the admin token in that Secret. */}}
{{- define "tollgate.adminSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}{{ .Values.adminToken.existingSecretKey }}{{ else }}admin-token{{ end }}
{{- end }}

{{/* "true" when a Redis URL is configured one way or the other. */}}
{{- define "tollgate.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* "true" when an admin token is configured one way or the other. */}}
{{- define "tollgate.hasAdminToken" -}}
{{- if or .Values.adminToken.value .Values.adminToken.existingSecret }}true{{ end }}
{{- end }}

{{/*
Refuses settings that would run, but wrongly: several pods without a shared Redis would
each keep their own limits, so a key would get N times its quota.
*/}}
{{- define "tollgate.validate" -}}
{{- if and (not (include "tollgate.hasRedis" .)) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "tollgate: set redis.url or redis.existingSecret: with more than one pod (replicaCount > 1 or autoscaling.enabled), limits must live in a shared Redis" }}
{{- end }}
{{- if not (has .Values.failureMode (list "allow" "deny")) }}
{{- fail (printf "tollgate: failureMode must be allow or deny, not %q" .Values.failureMode) }}
{{- end }}
{{- if not (has .Values.redis.mode (list "standalone" "cluster" "sentinel")) }}
{{- fail (printf "tollgate: redis.mode must be standalone, cluster or sentinel, not %q" .Values.redis.mode) }}
{{- end }}
{{- end }}
