{{/*
Chart name, truncated to the 63 characters Kubernetes allows in names and labels.
*/}}
{{- define "nepse-predictor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources. Track-specific resources append "-<track>", so the prefix
is kept short enough for the longest suffix ("-preview", "-router").
*/}}
{{- define "nepse-predictor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "nepse-predictor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of a resource: helm.sh/chart, the app.kubernetes.io set and its selector labels.
Call with (dict "context" $ "component" "predictor" "track" "canary"); "component" and "track"
are optional (a release-wide resource has neither).
*/}}
{{- define "nepse-predictor.labels" -}}
helm.sh/chart: {{ include "nepse-predictor.chart" .context }}
{{ include "nepse-predictor.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: nepse-predictor
{{- end }}

{{/*
Selector labels: name and instance, then app.kubernetes.io/component and nepse-predictor/track
when given (never the chart version). Takes the arguments of nepse-predictor.labels.
*/}}
{{- define "nepse-predictor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nepse-predictor.name" .context | quote }}
app.kubernetes.io/instance: {{ .context.Release.Name | quote }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .track }}
nepse-predictor/track: {{ . }}
{{- end }}
{{- end }}

{{/*
Labels of a predictor pod: its selector labels, the version of the slot's image (cut to a label
value) and podLabels. Call with (dict "context" $ "slot" "canary" "track" "canary"); leave out
"track" where the rollouts controller sets it.
*/}}
{{- define "nepse-predictor.podLabels" -}}
{{ include "nepse-predictor.selectorLabels" (dict "context" .context "component" "predictor" "track" .track) }}
app.kubernetes.io/version: {{ include "nepse-predictor.labelValue" (index .context.Values.slots .slot).imageTag | quote }}
{{- with .context.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the ServiceAccount.
*/}}
{{- define "nepse-predictor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nepse-predictor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when one Argo Rollouts Rollout carries the predictors instead of a Deployment per track.
*/}}
{{- define "nepse-predictor.argoRollouts" -}}
{{- if and (eq .Values.rollout.engine "argoRollouts") (eq .Values.platform "kubernetes") }}true{{ end }}
{{- end }}

{{/*
The slot a Rollout's pod template carries: where the release is heading. A canary's template is
the canary slot once one is set (the controller keeps the previous stable ReplicaSet running); a
blue-green's is the active colour's slot (the controller previews it, then switches to it).
Changing only which key holds a version (`nepse-gitops finish` moving canary to stable) leaves
the template, and so the running pods, as they are.
*/}}
{{- define "nepse-predictor.rolloutSlot" -}}
{{- $v := .Values }}
{{- if eq $v.rollout.strategy "blueGreen" }}{{ $v.rollout.blueGreen.activeColor }}
{{- else if or $v.slots.canary.imageTag $v.slots.canary.modelVersion }}canary
{{- else }}stable
{{- end }}
{{- end }}

{{/*
Slots the current values deploy, as a JSON list: each must be set and not quarantined.
*/}}
{{- define "nepse-predictor.deployedSlots" -}}
{{- if include "nepse-predictor.argoRollouts" . }}
{{- if eq .Values.rollout.strategy "blueGreen" }}{{ list .Values.rollout.blueGreen.activeColor | toJson }}
{{- else if eq (include "nepse-predictor.rolloutSlot" .) "canary" }}["stable","canary"]
{{- else }}["stable"]
{{- end }}
{{- else }}{{ include "nepse-predictor.tracks" . }}
{{- end }}
{{- end }}

{{/*
Name of the Service in front of one track's pods (the Service its metrics are scraped through).
*/}}
{{- define "nepse-predictor.trackServiceName" -}}
{{- $fullname := include "nepse-predictor.fullname" .root }}
{{- if eq .track "active" }}{{ $fullname }}
{{- else }}{{ printf "%s-%s" $fullname .track }}
{{- end }}
{{- end }}

{{/*
Tracks (the values of the nepse-predictor/track pod label) of the current rollout strategy, as
a JSON list. With the native engine each is a slot with a Deployment of its own; with Argo
Rollouts they are the controller's roles (stable and canary, or active and preview), set on the
pods as ephemeral metadata.
*/}}
{{- define "nepse-predictor.tracks" -}}
{{- $s := .Values.rollout.strategy }}
{{- $rollouts := include "nepse-predictor.argoRollouts" . }}
{{- if and $rollouts (eq $s "blueGreen") }}["active","preview"]
{{- else if or (eq $s "canary") $rollouts }}["stable","canary"]
{{- else if eq $s "blueGreen" }}["blue","green"]
{{- else if eq $s "shadow" }}["stable","shadow"]
{{- else }}["stable"]
{{- end }}
{{- end }}

{{/*
The colour that does not receive live traffic in blueGreen.
*/}}
{{- define "nepse-predictor.idleColor" -}}
{{- if eq .Values.rollout.blueGreen.activeColor "blue" }}green{{ else }}blue{{ end }}
{{- end }}

{{/*
Image reference of one slot: <repository>:<imageTag>, pinned with @<imageDigest> when one is set.
Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.image" -}}
{{- $slot := index .root.Values.slots .track }}
{{- printf "%s:%s" .root.Values.image.repository $slot.imageTag }}
{{- with $slot.imageDigest }}@{{ . }}{{ end }}
{{- end }}

{{/*
A string cut to a valid label value: at most 63 characters, alphanumeric at both ends.
Docker tags may be longer or start with "_"; the full tag stays in an annotation.
*/}}
{{- define "nepse-predictor.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" (toString .) "-" | trunc 63 | trimAll "_.-" }}
{{- end }}

{{/*
A Kubernetes quantity ("250m", "1.5", "512Mi", "1e3", or a number) as a float in base units,
for comparing and adding quantities the schema has already checked.
*/}}
{{- define "nepse-predictor.quantity" -}}
{{- $q := toString . }}
{{- $number := regexFind "^[0-9]*[.]?[0-9]*" $q }}
{{- $suffix := trimPrefix $number $q }}
{{- $value := float64 (default "0" $number) }}
{{- $binary := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 }}
{{- $decimal := dict "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 }}
{{- $fraction := dict "m" 1e3 "u" 1e6 "n" 1e9 }}
{{- if hasKey $binary $suffix }}{{ $value = mulf $value (index $binary $suffix) }}
{{- else if hasKey $decimal $suffix }}{{ $value = mulf $value (index $decimal $suffix) }}
{{- else if hasKey $fraction $suffix }}{{ $value = divf $value (index $fraction $suffix) }}
{{- else if regexMatch "^[eE][+-]?[0-9]+$" $suffix }}
{{- $exponent := int (trimPrefix "+" (substr 1 -1 $suffix)) }}
{{- range until (ternary (sub 0 $exponent) $exponent (lt $exponent 0) | int) }}
{{- if lt $exponent 0 }}{{ $value = divf $value 10 }}{{ else }}{{ $value = mulf $value 10 }}{{ end }}
{{- end }}
{{- end }}
{{- $value }}
{{- end }}

{{/*
Resources of the predictor containers. With model.source=url the fetched model lives in an
emptyDir that counts against the pod's ephemeral storage: its sizeLimit is added to the
ephemeral-storage request and limit.
*/}}
{{- define "nepse-predictor.predictorResources" -}}
{{- $v := .Values }}
{{- $resources := deepCopy (default dict $v.resources) }}
{{- if eq $v.model.source "url" }}
{{- $model := include "nepse-predictor.quantity" $v.model.url.sizeLimit | float64 }}
{{- range $kind := list "requests" "limits" }}
{{- $list := default dict (index $resources $kind) }}
{{- $own := include "nepse-predictor.quantity" (index $list "ephemeral-storage" | default 0) | float64 }}
{{- $bytes := addf $own $model | ceil }}
{{- if eq (mod (int64 $bytes) 1048576) 0 }}
{{- $_ := set $list "ephemeral-storage" (printf "%dMi" (div (int64 $bytes) 1048576)) }}
{{- else }}
{{- $_ := set $list "ephemeral-storage" (printf "%.0f" $bytes) }}
{{- end }}
{{- $_ := set $resources $kind $list }}
{{- end }}
{{- end }}
{{- toYaml $resources }}
{{- end }}

{{/*
Model directory of one slot inside the container (NEPSE_MODEL_DIR).
*/}}
{{- define "nepse-predictor.modelDir" -}}
{{- $slot := index .root.Values.slots .track }}
{{- if eq .root.Values.model.source "image" }}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.model.image.path) $slot.modelVersion }}
{{- else }}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.model.mountPath) $slot.modelVersion }}
{{- end }}
{{- end }}

{{/*
Replicas of one workload without autoscaling. A canary without a traffic provider shares
replicaCount with stable according to its weight (the only split plain Services can make);
an idle colour scaled down gets 0.
*/}}
{{- define "nepse-predictor.replicas" -}}
{{- $v := .root.Values }}
{{- $total := int $v.replicaCount }}
{{- $weight := int $v.rollout.canary.weight }}
{{- if and (eq $v.rollout.strategy "blueGreen") $v.rollout.blueGreen.scaleDownIdle (eq .track (include "nepse-predictor.idleColor" .root)) }}0
{{- else if and (eq $v.rollout.strategy "canary") (eq $v.traffic.provider "none") }}
{{- $canary := div (add (mul $total $weight) 99) 100 }}
{{- if and (gt $weight 0) (lt $canary 1) }}{{ $canary = 1 }}{{ end }}
{{- if and (lt $weight 100) (ge $canary $total) (gt $total 1) }}{{ $canary = sub $total 1 }}{{ end }}
{{- if eq .track "canary" }}{{ $canary }}{{ else }}{{ max 0 (sub $total $canary) }}{{ end }}
{{- else }}{{ $total }}
{{- end }}
{{- end }}

{{/*
HPA minimum of one workload: the canary's minimum is scaled by its weight (at least 1).
*/}}
{{- define "nepse-predictor.hpaMinReplicas" -}}
{{- $v := .root.Values }}
{{- $min := int $v.autoscaling.minReplicas }}
{{- if eq .track "canary" }}
{{- max 1 (div (add (mul $min (int $v.rollout.canary.weight)) 99) 100) }}
{{- else }}{{ $min }}
{{- end }}
{{- end }}

{{/*
Whether a workload is scaled by an HPA ("true" or ""). An idle colour scaled to zero is not.
*/}}
{{- define "nepse-predictor.hpaEnabled" -}}
{{- $v := .root.Values }}
{{- if $v.autoscaling.enabled }}
{{- if not (and (eq $v.rollout.strategy "blueGreen") $v.rollout.blueGreen.scaleDownIdle (eq .track (include "nepse-predictor.idleColor" .root))) }}true{{ end }}
{{- end }}
{{- end }}

{{/*
Selector of the main Service: the pods that answer clients when no traffic provider is in the way.
*/}}
{{- define "nepse-predictor.mainServiceSelector" -}}
{{- $v := .Values }}
{{- $component := "predictor" }}
{{- $track := "" }}
{{- if eq $v.traffic.provider "router" }}{{ $component = "router" }}
{{- else if include "nepse-predictor.argoRollouts" . }}
{{- /* The rollouts controller adds the pod-template hash of the active (or stable) version. */}}
{{- else if eq $v.traffic.provider "istio" }}
{{- /* Istio picks the track per request through DestinationRule subsets of this host. */}}
{{- else if eq $v.rollout.strategy "blueGreen" }}{{ $track = $v.rollout.blueGreen.activeColor }}
{{- else if and (eq $v.rollout.strategy "canary") (eq $v.traffic.provider "none") }}
{{- /* stable and canary pods together: the split follows the replica ratio. */}}
{{- else }}{{ $track = "stable" }}
{{- end }}
{{- include "nepse-predictor.selectorLabels" (dict "context" . "component" $component "track" $track) }}
{{- end }}

{{/*
host:port of one track for the router: an override from traffic.router.upstreams, or the
track's in-cluster Service.
*/}}
{{- define "nepse-predictor.routerUpstream" -}}
{{- $v := .root.Values }}
{{- $override := index $v.traffic.router.upstreams .track | default "" }}
{{- if $override }}{{ $override }}
{{- else }}
{{- printf "%s-%s.%s.svc.%s:%d" (include "nepse-predictor.fullname" .root) .track .root.Release.Namespace $v.traffic.router.clusterDomain (int $v.service.port) }}
{{- end }}
{{- end }}

{{/*
A source value of an nginx `map`, matched literally: a leading "\\" stops nginx reading it as a
regular expression ("~...") or a parameter ("default", "hostnames", "include", "volatile"), and
the quoted string escapes "\\" and the double quote. The schema allows only printable ASCII.
*/}}
{{- define "nepse-predictor.nginxMapKey" -}}
"\\{{ . | replace "\\" "\\\\" | replace "\"" "\\\"" }}"
{{- end }}

{{/*
nginx variable holding a request header: "x-canary" -> "$http_x_canary".
*/}}
{{- define "nepse-predictor.nginxHeaderVar" -}}
{{- printf "$http_%s" (. | lower | replace "-" "_") }}
{{- end }}

{{/*
Revision template of one slot on Knative (metadata without the name, and spec).
Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.knativeTemplate" -}}
{{- $v := .root.Values }}
{{- $k := $v.knative }}
{{- $slot := index $v.slots .track -}}
metadata:
  labels:
    {{- include "nepse-predictor.podLabels" (dict "context" .root "slot" .track "track" .track) | nindent 4 }}
  annotations:
    autoscaling.knative.dev/min-scale: {{ $k.minScale | quote }}
    autoscaling.knative.dev/max-scale: {{ $k.maxScale | quote }}
    autoscaling.knative.dev/target: {{ $k.target | quote }}
    nepse-predictor/image-tag: {{ $slot.imageTag | quote }}
    nepse-predictor/model-version: {{ $slot.modelVersion | quote }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "nepse-predictor.podSpec" . | nindent 2 }}
{{- end }}

{{/*
Revision name of one slot on Knative: <fullname>-<track>-<hash of the revision template>.
Knative refuses a changed template under an old name, so any change (slot, resources, probes
...) makes a new name, and two slots never share one. The stable revision a canary refers to is
the one an earlier release made from the same values.
*/}}
{{- define "nepse-predictor.knativeRevision" -}}
{{- $hash := include "nepse-predictor.knativeTemplate" . | sha256sum | trunc 10 }}
{{- $prefix := printf "%s-%s" (include "nepse-predictor.fullname" .root) .track | trunc 52 | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $hash }}
{{- end }}

{{/*
The predictor container, shared by Deployments and the Knative Service.
Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.container" -}}
{{- $v := .root.Values -}}
- name: predictor
  image: {{ include "nepse-predictor.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  command:
    {{- toYaml $v.command | nindent 4 }}
  ports:
    - name: {{ if eq $v.platform "knative" }}http1{{ else }}http{{ end }}
      containerPort: {{ $v.containerPort }}
      protocol: TCP
  env:
    - name: NEPSE_TRACK
      {{- if include "nepse-predictor.argoRollouts" .root }}
      # The controller labels each pod with its role as it creates it; one template serves both.
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['nepse-predictor/track']
      {{- else }}
      value: {{ .track | quote }}
      {{- end }}
    - name: NEPSE_MODEL_DIR
      value: {{ include "nepse-predictor.modelDir" . | quote }}
    - name: NEPSE_BACKEND
      value: {{ $v.backend | quote }}
    - name: NEPSE_HOST
      value: "0.0.0.0"
    - name: NEPSE_PORT
      value: {{ $v.containerPort | quote }}
    {{- if ne $v.platform "knative" }}
    - name: NEPSE_GRACEFUL_TIMEOUT_SECONDS
      value: {{ sub (int $v.terminationGracePeriodSeconds) (add (int $v.preStopSleepSeconds) 1) | quote }}
    {{- end }}
    {{- if $v.redisUrl }}
    - name: NEPSE_REDIS_URL
      value: {{ $v.redisUrl | quote }}
    - name: NEPSE_PREDICTION_STREAM
      value: {{ $v.predictionLog.stream | quote }}
    - name: NEPSE_PREDICTION_STREAM_MAXLEN
      value: {{ $v.predictionLog.maxLength | int64 | quote }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if ne $v.platform "knative" }}
  startupProbe:
    httpGet:
      path: /health
      port: {{ $v.containerPort }}
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  {{- end }}
  livenessProbe:
    httpGet:
      path: /health
      port: {{ $v.containerPort }}
    periodSeconds: {{ $v.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /ready
      port: {{ $v.containerPort }}
    periodSeconds: {{ $v.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.readiness.failureThreshold }}
  {{- if and (ne $v.platform "knative") (gt (int $v.preStopSleepSeconds) 0) }}
  {{- /* A zero sleep is no pause: left out, as Argo Rollouts' validation (like Kubernetes
  before the AllowPodLifecycleSleepActionZeroValue gate) refuses it. */}}
  lifecycle:
    preStop:
      # The image has no shell: the kubelet pauses, so the endpoint removal reaches every
      # client before the server gets SIGTERM.
      sleep:
        seconds: {{ $v.preStopSleepSeconds }}
  {{- end }}
  resources:
    {{- include "nepse-predictor.predictorResources" .root | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- if eq $v.model.source "url" }}
    - name: models
      mountPath: {{ $v.model.mountPath }}
      readOnly: true
    {{- else if eq $v.model.source "pvc" }}
    - name: models
      mountPath: {{ $v.model.mountPath }}
      readOnly: true
    {{- else if eq $v.model.source "imageVolume" }}
    - name: models
      mountPath: {{ include "nepse-predictor.modelDir" . }}
      readOnly: true
    {{- end }}
{{- end }}

{{/*
Pod spec of one predictor workload. Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.podSpec" -}}
{{- $v := .root.Values }}
{{- $slot := index $v.slots .track -}}
serviceAccountName: {{ include "nepse-predictor.serviceAccountName" .root }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if eq $v.platform "knative" }}
containerConcurrency: {{ $v.knative.containerConcurrency }}
timeoutSeconds: {{ $v.knative.timeoutSeconds }}
{{- else }}
automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
{{- end }}
{{- if eq $v.model.source "url" }}
initContainers:
  - name: fetch-model
    image: {{ include "nepse-predictor.image" . | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command:
      - nepse-predictor
      - fetch-model
      - --url
      - {{ printf "%s/%s/" (trimSuffix "/" $v.model.url.base) $slot.modelVersion | quote }}
      - --dest
      - {{ include "nepse-predictor.modelDir" . | quote }}
      - --sha256
      - {{ $slot.modelSha256 | quote }}
      - --timeout
      - {{ $v.model.url.timeout | quote }}
    resources:
      {{- include "nepse-predictor.predictorResources" .root | nindent 6 }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: models
        mountPath: {{ $v.model.mountPath }}
{{- end }}
containers:
  {{- include "nepse-predictor.container" . | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if eq $v.model.source "url" }}
  - name: models
    emptyDir:
      sizeLimit: {{ $v.model.url.sizeLimit }}
  {{- else if eq $v.model.source "pvc" }}
  - name: models
    persistentVolumeClaim:
      claimName: {{ $v.model.pvc.claimName }}
      readOnly: true
  {{- else if eq $v.model.source "imageVolume" }}
  - name: models
    image:
      reference: {{ printf "%s:%s" $v.model.imageVolume.repository $slot.modelVersion | quote }}
      pullPolicy: {{ $v.model.imageVolume.pullPolicy }}
  {{- end }}
{{- if ne $v.platform "knative" }}
{{- if $v.topologySpread.enabled }}
{{- /* A Rollout's pods of both tracks spread together: the controller sets their track. */}}
{{- $track := ternary "" .track (not (empty (include "nepse-predictor.argoRollouts" .root))) }}
{{- $selector := include "nepse-predictor.selectorLabels" (dict "context" .root "component" "predictor" "track" $track) }}
topologySpreadConstraints:
  {{- range $v.topologySpread.constraints }}
  - {{ toYaml . | indent 4 | trim }}
    labelSelector:
      matchLabels:
        {{- $selector | nindent 8 }}
  {{- end }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
nginx.conf of the router. Every address comes from nepse-predictor.routerUpstream, so the same
configuration runs in the cluster and, with traffic.router.upstreams pointing at loopback, in tests.
*/}}
{{/*
The prediction routes, as the service labels its request metrics (route templates): the alert
rules judge a track by these routes only, as `nepse-gitops gate` does, so readiness, health,
metadata and unmatched requests never count. The same list is PREDICTION_ROUTES in the
service's routes/paths.py and in nepse_gitops/prediction_routes.py; a test proves they agree.
*/}}
{{- define "nepse-predictor.predictionRoutes" -}}
{{- list "/v1/predict" "/v1/predict/bars" "/v2/models/{model_name}/infer" "/v2/models/{model_name}/versions/{model_version}/infer" | toJson }}
{{- end }}

{{/*
A PromQL regex matching exactly the prediction routes.
*/}}
{{- define "nepse-predictor.predictionRouteRegex" -}}
{{- $routes := list }}
{{- range include "nepse-predictor.predictionRoutes" . | fromJsonArray }}
{{- $routes = append $routes (. | replace "{" "\\{" | replace "}" "\\}") }}
{{- end }}
{{- join "|" $routes }}
{{- end }}

{{- define "nepse-predictor.routerConfig" -}}
{{- $v := .Values }}
{{- $r := $v.traffic.router }}
{{- $s := $v.rollout.strategy }}
{{- $tmp := trimSuffix "/" $r.tempDir }}
{{- $c := $v.rollout.canary -}}
# nepse-predictor router: strategy {{ $s }}. Generated by the chart; edit values, not this file.
worker_processes {{ $r.workerProcesses }};
pid {{ $tmp }}/nginx.pid;
error_log /dev/stderr warn;

events {
    worker_connections {{ $r.workerConnections }};
}

http {
    default_type application/octet-stream;
    server_tokens off;
    client_max_body_size 8m;
    client_body_temp_path {{ $tmp }}/client_body;
    proxy_temp_path {{ $tmp }}/proxy;
    fastcgi_temp_path {{ $tmp }}/fastcgi;
    uwsgi_temp_path {{ $tmp }}/uwsgi;
    scgi_temp_path {{ $tmp }}/scgi;
    keepalive_timeout 65s;
    {{- if gt (int $v.preStopSleepSeconds) 0 }}
    # A client connection older than the preStop pause gets its next answer with
    # "Connection: close". A router pod being replaced so sees every busy client reconnect (to
    # the new pods) during its pause, instead of cutting kept-alive connections when it quits,
    # which would race a client sending its next request.
    keepalive_time {{ int $v.preStopSleepSeconds }}s;
    {{- end }}

    log_format nepse escape=json '{"time":"$time_iso8601","request_id":"$nepse_request_id",'
        '"method":"$request_method","uri":"$request_uri","status":$status,'
        '"track":"$upstream_http_x_track","upstream":"$upstream_addr",'
        '"request_time":$request_time}';
    access_log /dev/stdout nepse;

    # One request id for the answer and any mirrored copy: the client's X-Request-Id when it is a
    # plain token, else one nginx makes. It is only passed on and logged: the split, the mirror
    # sample and the stickiness cookie use nginx's own $request_id, which no client chooses.
    map $http_x_request_id $nepse_request_id {
        "~^[A-Za-z0-9._:-]{1,128}$" $http_x_request_id;
        default $request_id;
    }

    {{- range $track := include "nepse-predictor.tracks" . | fromJsonArray }}

    upstream nepse_{{ $track }} {
        server {{ include "nepse-predictor.routerUpstream" (dict "root" $ "track" $track) }} max_fails=0;
        keepalive 32;
        # Below the predictor's own idle timeout (NEPSE_KEEP_ALIVE_SECONDS), so nginx drops an
        # idle connection before the server does and never sends a request into its close.
        keepalive_timeout {{ int $r.upstreamKeepaliveTimeout }}s;
    }
    {{- end }}
    {{- if eq $s "canary" }}
    {{- $w := int $c.weight }}
    {{- if eq $c.stickiness.mode "header" }}

    # Stickiness: the same {{ $c.stickiness.name }} header always hashes to the same track.
    map {{ include "nepse-predictor.nginxHeaderVar" $c.stickiness.name }} $nepse_sticky_key {
        ""      $request_id;
        default {{ include "nepse-predictor.nginxHeaderVar" $c.stickiness.name }};
    }
    {{- else if eq $c.stickiness.mode "cookie" }}

    # Stickiness: the {{ $c.stickiness.name }} cookie is hashed; a first visit gets one set.
    map $cookie_{{ $c.stickiness.name }} $nepse_sticky_key {
        ""      $request_id;
        default $cookie_{{ $c.stickiness.name }};
    }
    map $cookie_{{ $c.stickiness.name }} $nepse_set_cookie {
        ""      "{{ $c.stickiness.name }}=$request_id; Path=/; Max-Age={{ int $c.stickiness.cookieMaxAge }}; HttpOnly; SameSite=Lax";
        default "";
    }
    {{- else }}

    map $request_id $nepse_sticky_key {
        default $request_id;
    }
    {{- end }}

    # Weighted split: {{ $w }}% canary.
    {{- if and (gt $w 0) (lt $w 100) }}
    split_clients "${nepse_sticky_key}" $nepse_weighted {
        {{ $w }}%    canary;
        *       stable;
    }
    {{- else }}
    map $nepse_sticky_key $nepse_weighted {
        default {{ if eq $w 100 }}canary{{ else }}stable{{ end }};
    }
    {{- end }}

    # Header override: the {{ $c.header.name }} header with the exact value of rollout.canary.header.value
    # always reaches the canary.
    map {{ include "nepse-predictor.nginxHeaderVar" $c.header.name }} $nepse_track {
        {{ include "nepse-predictor.nginxMapKey" $c.header.value }} canary;
        default $nepse_weighted;
    }
    {{- else if eq $s "blueGreen" }}

    map $nepse_request_id $nepse_track {
        default {{ $v.rollout.blueGreen.activeColor }};
    }
    {{- else }}

    map $nepse_request_id $nepse_track {
        default stable;
    }
    {{- end }}
    {{- if eq $s "shadow" }}
    {{- $p := $v.rollout.shadow.percent }}

    # Shadow sampling: {{ $p }}% of requests are copied to the shadow.
    log_format nepse_mirror escape=json '{"time":"$time_iso8601","mirror":true,'
        '"request_id":"$http_x_request_id","status":$status,'
        '"upstream":"$upstream_addr","request_time":$request_time}';
    {{- if and (gt (float64 $p) 0.0) (lt (float64 $p) 100.0) }}
    split_clients "${request_id}" $nepse_mirror_sampled {
        {{ $p }}%    1;
        *       0;
    }
    {{- else }}
    map $nepse_request_id $nepse_mirror_sampled {
        default {{ if eq (float64 $p) 100.0 }}1{{ else }}0{{ end }};
    }
    {{- end }}
    {{- end }}

    server {
        listen {{ with $r.listenAddress }}{{ . }}:{{ end }}{{ $r.port }};

        location = /router-healthz {
            access_log off;
            default_type text/plain;
            return 200 "ok\n";
        }

        location / {
            {{- if eq $s "shadow" }}
            mirror /_nepse_mirror;
            mirror_request_body on;
            {{- end }}
            proxy_pass http://nepse_$nepse_track;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $nepse_request_id;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout {{ int $r.proxyReadTimeout }}s;
            # A kept-alive connection that a stopping pod closed is retried once on a new one
            # (a prediction has no side effect a second call would repeat); timeouts are not.
            proxy_next_upstream error non_idempotent;
            {{- if and (eq $s "canary") (eq $c.stickiness.mode "cookie") }}
            add_header Set-Cookie $nepse_set_cookie;
            {{- end }}
        }
        {{- if eq $s "shadow" }}

        # The shadow's answer never reaches a client. nginx ends a request (and reads the next
        # one on the same connection) only when its mirror subrequest is done, so the copy is
        # handed to the relay below, which does the slow part: this subrequest stops waiting
        # a millisecond after the relay has the request.
        location = /_nepse_mirror {
            internal;
            if ($nepse_mirror_sampled = "0") {
                return 204;
            }
            proxy_pass http://127.0.0.1:{{ int $r.mirrorRelayPort }}$request_uri;
            proxy_set_header X-Request-Id $nepse_request_id;
            proxy_next_upstream off;
            proxy_connect_timeout 1s;
            proxy_send_timeout 1s;
            proxy_read_timeout 1ms;
            # Every hand-off ends in that timeout; the relay logs what happened to the copy.
            error_log /dev/stderr crit;
            access_log off;
        }
        {{- end }}
    }
    {{- if eq $s "shadow" }}

    # The mirror relay: forwards each copy to the shadow and discards the answer, carrying on
    # after the mirror subrequest has gone (proxy_ignore_client_abort).
    server {
        listen 127.0.0.1:{{ int $r.mirrorRelayPort }};
        access_log /dev/stdout nepse_mirror;

        location / {
            proxy_pass http://nepse_shadow;
            proxy_ignore_client_abort on;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 1s;
            proxy_send_timeout {{ int $r.mirrorTimeout }}s;
            proxy_read_timeout {{ int $r.mirrorTimeout }}s;
        }
    }
    {{- end }}
}
{{- end }}

{{/*
Routes of the VirtualService (or HTTPRoute) that the rollouts controller adds and removes for
the canary's setHeaderRoute and setMirrorRoute steps, as a JSON list.
*/}}
{{- define "nepse-predictor.rolloutManagedRoutes" -}}
{{- $routes := list }}
{{- range .Values.rollout.argoRollouts.canary.steps }}
{{- if and (hasKey . "setHeaderRoute") (not (has "canary-header" $routes)) }}{{ $routes = append $routes "canary-header" }}{{ end }}
{{- if and (hasKey . "setMirrorRoute") (not (has "shadow-mirror" $routes)) }}{{ $routes = append $routes "shadow-mirror" }}{{ end }}
{{- end }}
{{- toJson $routes }}
{{- end }}

{{/*
"true" when a Rollout step or phase runs the chart's AnalysisTemplate.
*/}}
{{- define "nepse-predictor.rolloutAnalysis" -}}
{{- $v := .Values }}
{{- if include "nepse-predictor.argoRollouts" . }}
{{- if eq $v.rollout.strategy "blueGreen" }}
{{- if or $v.rollout.argoRollouts.blueGreen.prePromotionAnalysis $v.rollout.argoRollouts.blueGreen.postPromotionAnalysis }}true{{ end }}
{{- else if eq $v.rollout.strategy "canary" }}
{{- range $v.rollout.argoRollouts.canary.steps }}{{ if hasKey . "analysis" }}true{{ end }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
PromQL selector of one track's prediction requests for the AnalysisTemplate: the gate's
selector, the track label (the track is the template's `track` or `baseline` argument) and
the prediction routes. Call with (dict "root" $ "arg" "track").
*/}}
{{- define "nepse-predictor.analysisSelector" -}}
{{- $prom := dig "prometheus" dict (default dict .root.Values.gate) }}
{{- $matchers := list }}
{{- with $prom.selector }}{{ $matchers = append $matchers . }}{{ end }}
{{- $matchers = append $matchers (printf "%s=\"{{args.%s}}\"" (default "track" $prom.trackLabel) .arg) }}
{{- if not .noRoutes }}
{{- $matchers = append $matchers (printf "route=~%q" (include "nepse-predictor.predictionRouteRegex" .root)) }}
{{- end }}
{{- join ", " $matchers }}
{{- end }}

{{/*
"true" when a canary analysis step also judges the mirrored canary's agreement with stable.
*/}}
{{- define "nepse-predictor.rolloutShadowAnalysis" -}}
{{- if and (include "nepse-predictor.argoRollouts" .) (eq .Values.rollout.strategy "canary") }}
{{- range .Values.rollout.argoRollouts.canary.steps }}
{{- if and (hasKey . "analysis") .analysis.shadowAgreement }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}
