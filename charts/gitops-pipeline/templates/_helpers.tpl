{{/*
Names and labels shared by every template. Resource names are capped at 63 characters,
the limit of a DNS label that Kubernetes puts on most names and on label values.
*/}}

{{- define "gitops-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gitops-pipeline.fullname" -}}
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

{{/* "<fullname>-<component>", with the fullname shortened so the suffix always fits. */}}
{{- define "gitops-pipeline.componentName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
{{- printf "%s-%s" (include "gitops-pipeline.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-") $component }}
{{- end }}

{{- define "gitops-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gitops-pipeline.labels" -}}
helm.sh/chart: {{ include "gitops-pipeline.chart" . }}
app.kubernetes.io/name: {{ include "gitops-pipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gitops-pipeline
{{- end }}

{{/* Selector labels of one component: stable across upgrades, so never the version. */}}
{{- define "gitops-pipeline.selectorLabels" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ include "gitops-pipeline.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end }}

{{- define "gitops-pipeline.componentLabels" -}}
{{- include "gitops-pipeline.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "gitops-pipeline.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "gitops-pipeline.serviceAccountName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
{{- if $root.Values.serviceAccount.create }}
{{- include "gitops-pipeline.componentName" (list $root $component) }}
{{- else }}
{{- default "default" (index $root.Values.serviceAccount (printf "%sName" $component)) }}
{{- end }}
{{- end }}

{{/* True when a secrets.files / secrets.env entry is meant for this component. */}}
{{- define "gitops-pipeline.wants" -}}
{{- $entry := index . 0 }}
{{- $component := index . 1 -}}
{{- if has $component (default (list "receiver" "syncer" "notifier") $entry.components) }}true{{ end }}
{{- end }}

{{/*
True when the notifier is deployed: `notifier.enabled`, or when unset, whenever
`config.notifications` has rules. `gitops notifier` refuses a config without rules, so
forcing it on without any fails the render instead of crash-looping pods.
*/}}
{{- define "gitops-pipeline.notifierEnabled" -}}
{{- $enabled := .Values.notifier.enabled -}}
{{- $rules := .Values.config.notifications -}}
{{- if kindIs "invalid" $enabled }}
{{- if $rules }}true{{ end }}
{{- else if $enabled }}
{{- if not $rules }}
{{- fail "notifier.enabled is true but config.notifications has no rules: gitops notifier would refuse to start; add rules or leave notifier.enabled unset" }}
{{- end -}}
true
{{- end }}
{{- end }}

{{/* The components this release deploys, in a stable order. */}}
{{- define "gitops-pipeline.components" -}}
{{- $components := list "receiver" "syncer" }}
{{- if include "gitops-pipeline.notifierEnabled" . }}
{{- $components = append $components "notifier" }}
{{- end }}
{{- join " " $components }}
{{- end }}

{{/*
Pod template annotations: a checksum of the configuration so that `helm upgrade` with a
changed config rolls the pods (the processes read the file once, at start-up).
*/}}
{{- define "gitops-pipeline.podAnnotations" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
{{- $values := index $root.Values $component -}}
checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
{{- if $root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $values.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Environment common to every component. */}}
{{- define "gitops-pipeline.env" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
- name: GITOPS_CONFIG
  value: /etc/gitops/gitops.yaml
- name: HOME
  # The root filesystem is read-only; git and Python caches write under HOME.
  value: /tmp
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with $root.Values.kafka.bootstrap }}
- name: GITOPS_KAFKA_BOOTSTRAP
  value: {{ . | quote }}
{{- end }}
{{- range $root.Values.secrets.env }}
{{- if include "gitops-pipeline.wants" (list . $component) }}
- name: {{ required "secrets.env[].name is required" .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.env[].existingSecret is required" .existingSecret }}
      key: {{ required "secrets.env[].key is required" .key }}
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gitops-pipeline.volumeMounts" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
- name: config
  mountPath: /etc/gitops/gitops.yaml
  subPath: gitops.yaml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- range $root.Values.secrets.files }}
{{- if include "gitops-pipeline.wants" (list . $component) }}
- name: secret-{{ required "secrets.files[].name is required" .name }}
  mountPath: /etc/gitops/secrets/{{ .name }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "gitops-pipeline.volumes" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
- name: config
  configMap:
    name: {{ include "gitops-pipeline.fullname" $root }}-config
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- range $root.Values.secrets.files }}
{{- if include "gitops-pipeline.wants" (list . $component) }}
- name: secret-{{ .name }}
  secret:
    secretName: {{ required "secrets.files[].existingSecret is required" .existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level scheduling fields shared by every Deployment. */}}
{{- define "gitops-pipeline.scheduling" -}}
{{- $values := . -}}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
