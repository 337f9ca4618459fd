{{/* Names and labels. */}}
{{- define "nekocord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nekocord.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "nekocord.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "nekocord.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nekocord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nekocord.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nekocord.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "nekocord.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* SHARDS_PER_POD, after checking that the pods split the shards evenly. */}}
{{- define "nekocord.shardsPerPod" -}}
{{- $count := int .Values.shards.count -}}
{{- $pods := int .Values.shards.pods -}}
{{- if ne (mod $count $pods) 0 -}}
{{- fail (printf "shards.count (%d) must be a multiple of shards.pods (%d): every pod runs as many shards" $count $pods) -}}
{{- end -}}
{{- div $count $pods -}}
{{- end -}}

{{/* The Secret holding DISCORD_TOKEN (and DATABASE_URL unless CloudNativePG's). */}}
{{- define "nekocord.secretName" -}}
{{- if .Values.existingSecret.name -}}
{{- .Values.existingSecret.name -}}
{{- else -}}
{{- include "nekocord.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "nekocord.tokenKey" -}}
{{- if .Values.existingSecret.name -}}{{ .Values.existingSecret.tokenKey }}{{- else -}}discord-token{{- end -}}
{{- end -}}

{{- define "nekocord.databaseUrlKey" -}}
{{- if .Values.existingSecret.name -}}{{ .Values.existingSecret.databaseUrlKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{- define "nekocord.cnpgName" -}}
{{- printf "%s-db" (include "nekocord.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* What the values must say before anything renders. */}}
{{- define "nekocord.validate" -}}
{{- if and (not .Values.existingSecret.name) (not .Values.discord.token) -}}
{{- fail "set discord.token, or existingSecret.name (a Secret holding the token and DATABASE_URL)" -}}
{{- end -}}
{{- if and (not .Values.existingSecret.name) (not .Values.database.url) (not .Values.database.cloudnativepg.enabled) -}}
{{- fail "set database.url (postgresql://…), database.cloudnativepg.enabled, or existingSecret.name: the pods share one PostgreSQL" -}}
{{- end -}}
{{- if and .Values.database.url .Values.database.cloudnativepg.enabled -}}
{{- fail "database.url and database.cloudnativepg.enabled exclude each other" -}}
{{- end -}}
{{- end -}}

{{/* A resource figure: base + perShard × the pod's shards. */}}
{{- define "nekocord.perPod" -}}
{{- $figure := index . 0 -}}
{{- $shards := int (index . 1) -}}
{{- add (int $figure.base) (mul (int $figure.perShard) $shards) -}}
{{- end -}}
