# shellcheck shell=bash
# Images for the real node, made locally and imported into its containerd: no registry is
# ever asked. Source it after common.sh and configs.sh.

ROUTER_IMAGE_REPOSITORY=localhost/nepse-router

# An image from a root filesystem folder, with podman import (no build, no base image).
import_rootfs() { # DIR IMAGE [--change ...]
  local dir=$1 image=$2; shift 2
  tar -C "$dir" --numeric-owner -cf - . | podman import --quiet "$@" - "$image" >/dev/null
}

build_pause_image() {
  local dir=$STATE/images/pause
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$BIN/nepse-pause" "$dir/pause"
  import_rootfs "$dir" "$PAUSE_IMAGE" --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535'
}

# The router image: Debian's nginx (what the router tier tests) with the shared libraries it
# loads, and busybox for the chart's `sh -c "sleep ...; nginx -s quit"` preStop hook. nginx
# quits gracefully on SIGQUIT, as the official images declare.
# The tag names Debian's nginx version and this builder, so a changed recipe makes a new image.
router_image_tag() {
  local nginx recipe
  nginx=$(dpkg-query -W -f='${Version}' nginx | tr -c 'A-Za-z0-9._-' '_')
  recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-8)
  echo "$nginx-$recipe"
}

build_router_image() {
  local image
  image=$ROUTER_IMAGE_REPOSITORY:$(router_image_tag)
  if podman image exists "$image"; then
    echo "$image"
    return
  fi
  local dir=$STATE/images/router lib
  rm -rf "$dir" && mkdir -p "$dir"/{bin,usr/sbin,etc,tmp,var/lib/nginx,var/log/nginx}
  cp /usr/sbin/nginx "$dir/usr/sbin/nginx"
  for lib in $(ldd /usr/sbin/nginx | awk '/=>/ { print $3 } /^[ \t]*\// { print $1 }'); do
    mkdir -p "$dir/$(dirname "$lib")"
    cp -L "$lib" "$dir/$lib"
  done
  cp /bin/busybox "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  ln -s busybox "$dir/bin/sleep"
  ln -s /usr/sbin/nginx "$dir/bin/nginx"
  printf 'root:x:0:0::/:/bin/sh\nnginx:x:10001:10001::/tmp:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnginx:x:10001:\n' >"$dir/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$dir/etc/nsswitch.conf"
  chmod 1777 "$dir/tmp"
  import_rootfs "$dir" "$image" --change 'ENTRYPOINT ["/usr/sbin/nginx"]' \
    --change 'CMD ["-g", "daemon off;"]' --change 'STOPSIGNAL SIGQUIT' --change 'USER 10001:10001' \
    --change 'ENV PATH=/usr/sbin:/bin'
  echo "$image"
}

# load_images IMAGE...: podman's images into the node's containerd (k8s.io namespace).
load_images() {
  local image archive
  for image in "$@"; do
    podman image exists "$image" || die "image $image is not in podman's store (build it first)"
    archive=$(mktemp -p "$STATE" image.XXXXXX.tar)
    podman save --quiet --format docker-archive -o "$archive" "$image"
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$archive" >/dev/null ||
      { rm -f "$archive"; die "ctr could not import $image"; }
    rm -f "$archive"
    log "loaded $image into the node's containerd"
  done
}
