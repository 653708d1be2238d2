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
Annotations of a predictor pod: the slot's full image tag and model version (the labels carry
them cut to label values), then podAnnotations; on Knative the revision's autoscaling bounds
come first. Call with (dict "context" $ "slot" "canary").
*/}}
{{- define "nepse-predictor.podAnnotations" -}}
{{- $v := .context.Values }}
{{- $slot := index $v.slots .slot }}
{{- if eq $v.platform "knative" -}}
autoscaling.knative.dev/min-scale: {{ $v.knative.minScale | quote }}
autoscaling.knative.dev/max-scale: {{ $v.knative.maxScale | quote }}
autoscaling.knative.dev/target: {{ $v.knative.target | quote }}
{{ end -}}
nepse-predictor/image-tag: {{ $slot.imageTag | quote }}
nepse-predictor/model-version: {{ $slot.modelVersion | quote }}
{{- with $v.podAnnotations }}
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
"true" when one workload is the idle colour of a blue-green release that
rollout.blueGreen.scaleDownIdle scales to zero (no replicas, no HPA). Call with
(dict "root" $ "track" "green").
*/}}
{{- define "nepse-predictor.scaledToZero" -}}
{{- $v := .root.Values }}
{{- if and (eq $v.rollout.strategy "blueGreen") $v.rollout.blueGreen.scaleDownIdle (eq .track (include "nepse-predictor.idleColor" .root)) }}true{{ end }}
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
{{- if include "nepse-predictor.scaledToZero" . }}0
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
{{- if not (include "nepse-predictor.scaledToZero" .) }}true{{ end }}
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
metadata:
  labels:
    {{- include "nepse-predictor.podLabels" (dict "context" .root "slot" .track "track" .track) | nindent 4 }}
  annotations:
    {{- include "nepse-predictor.podAnnotations" (dict "context" .root "slot" .track) | nindent 4 }}
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
    - name: NEPSE_MAX_BODY_BYTES
      value: {{ $v.maxBodyBytes | int64 | quote }}
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
    {{- with include "nepse-predictor.modelVolumeMount" . }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The predictor container's read-only mount of the models volume (nothing with model.source=image):
the model directory of model.source url and pvc lives under model.mountPath, an image volume is
mounted as the slot's model directory itself. Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.modelVolumeMount" -}}
{{- $v := .root.Values }}
{{- if has $v.model.source (list "url" "pvc") -}}
- name: models
  mountPath: {{ $v.model.mountPath }}
  readOnly: true
{{- else if eq $v.model.source "imageVolume" -}}
- name: models
  mountPath: {{ include "nepse-predictor.modelDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The models volume of a predictor pod (nothing with model.source=image): an emptyDir the init
container fetches into (url), the claim (pvc) or the slot's model image (imageVolume).
Call with (dict "root" $ "track" "canary").
*/}}
{{- define "nepse-predictor.modelVolume" -}}
{{- $v := .root.Values }}
{{- $slot := index $v.slots .track }}
{{- if ne $v.model.source "image" -}}
- name: models
  {{- if eq $v.model.source "url" }}
  emptyDir:
    sizeLimit: {{ $v.model.url.sizeLimit }}
  {{- else if eq $v.model.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ $v.model.pvc.claimName }}
    readOnly: true
  {{- else if eq $v.model.source "imageVolume" }}
  image:
    reference: {{ printf "%s:%s" $v.model.imageVolume.repository $slot.modelVersion | quote }}
    pullPolicy: {{ $v.model.imageVolume.pullPolicy }}
  {{- end }}
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
  {{- with include "nepse-predictor.modelVolume" . }}
  {{- . | nindent 2 }}
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

{{/*
nginx.conf of the router, rendered from files/nginx.conf.tpl (which holds the configuration and
says where its addresses come from).
*/}}
{{- define "nepse-predictor.routerConfig" -}}
{{- tpl (.Files.Get "files/nginx.conf.tpl") . | trimSuffix "\n" }}
{{- end }}

{{/*
A size in bytes as nginx reads it (client_max_body_size): "8m" or "1536k" when it divides
evenly, else the bytes themselves; always exact.
*/}}
{{- define "nepse-predictor.nginxSize" -}}
{{- $bytes := int64 . }}
{{- if eq (mod $bytes 1048576) 0 }}{{ div $bytes 1048576 }}m
{{- else if eq (mod $bytes 1024) 0 }}{{ div $bytes 1024 }}k
{{- else }}{{ $bytes }}
{{- end }}
{{- end }}

{{/*
Size of the router's temp emptyDir in MiB: nginx writes a request body larger than
client_body_buffer_size there until the predictor has it (a shadow's mirror relay writes a
second copy). It holds eight bodies of maxBodyBytes, as the 64Mi it has at the default 8 MiB
limit does, and never less than 64Mi.
*/}}
{{- define "nepse-predictor.routerTempMi" -}}
{{- $bodies := mul (int64 .Values.maxBodyBytes) 8 }}
{{- max 64 (div (add $bodies 1048575) 1048576) }}
{{- end }}

{{/*
Resources of the router container: traffic.router.resources, with the room the temp emptyDir
takes above its 64Mi base (see nepse-predictor.routerTempMi) added to an ephemeral-storage
request and limit that are set.
*/}}
{{- define "nepse-predictor.routerResources" -}}
{{- $resources := deepCopy (default dict .Values.traffic.router.resources) }}
{{- $extra := mul (sub (include "nepse-predictor.routerTempMi" . | int64) 64) 1048576 }}
{{- if gt $extra 0 }}
{{- range $kind := list "requests" "limits" }}
{{- $list := index $resources $kind }}
{{- if and $list (hasKey $list "ephemeral-storage") }}
{{- $bytes := addf (include "nepse-predictor.quantity" (index $list "ephemeral-storage") | float64) $extra | ceil }}
{{- if eq (mod (int64 $bytes) 1048576) 0 }}
{{- $_ := set $list "ephemeral-storage" (printf "%dMi" (div (int64 $bytes) 1048576)) }}
{{- else }}
{{- $_ := set $list "ephemeral-storage" (printf "%.0f" $bytes) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with $resources }}{{ toYaml . }}{{ end }}
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
