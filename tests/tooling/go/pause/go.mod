// The pause process of the real node's pod sandboxes: holds the pod's namespaces, reaps
// orphans and exits on SIGTERM or SIGINT. Built static (CGO_ENABLED=0) and imported into
// containerd as localhost/nepse-pause, so no sandbox image is ever pulled.
module nepse-predictor/tooling/pause

go 1.26.0
