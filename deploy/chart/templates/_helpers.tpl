{{- define "kplex.name" -}}kplex-gateway{{- end -}}
{{- define "kplex.labels" -}}
app.kubernetes.io/name: kplex-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "kplex.selector" -}}
app.kubernetes.io/name: kplex-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "kplex.tlsSecret" -}}{{ .Values.tls.secretName | default "kplex-gateway-tls" }}{{- end -}}
{{- define "kplex.advertiseUrl" -}}
{{- if .Values.advertiseUrl -}}{{ .Values.advertiseUrl }}
{{- else if .Values.ingress.enabled -}}https://{{ .Values.ingress.host }}
{{- else -}}https://{{ include "kplex.name" . }}.{{ .Release.Namespace }}.svc:{{ .Values.service.port }}
{{- end -}}
{{- end -}}
