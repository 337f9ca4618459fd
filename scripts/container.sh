#!/usr/bin/env bash
# Build the nekocord image with podman, also on machines that reach no container registry.
#
# With Docker and access to Docker Hub you need none of this:
#
#     docker build -t nekocord .          # or: docker compose build
#
# This script is what CI (.ci/run) and the container test (tests/container/) use. Its steps,
# and what each one works around:
#
#   tools   Install podman, buildah, runc and mmdebstrap with apt when podman is missing (root).
#   conf    Write a private containers.conf (used through CONTAINERS_CONF, never installed
#           system-wide) and print its path. It sets the runtime to runc (crun 1.8 refuses
#           hosts whose cgroups are a v1/v2 hybrid) and default ulimits no higher than this
#           host's hard limits (podman's default nofile=1048576 fails where the session may
#           not raise it: "setrlimit RLIMIT_NOFILE: Operation not permitted").
#   base    Make sure the Dockerfile's base image, python:3.11-slim, is there: pull it, and
#           when no registry answers, build a local stand-in with the same name: Debian
#           bookworm's python3.11 (what python:3.11-slim is built on) with a virtual
#           environment first on PATH, so `python` and `pip` work as in the official image.
#           The root file system is made by mmdebstrap from the host's own apt sources and
#           kept in /var/cache (NEKOCORD_BASE_CACHE), keyed by the recipe below, so later
#           runs only import it (~3 s instead of ~35 s).
#   build   `podman build --format docker` (the default OCI format silently drops the
#           Dockerfile's HEALTHCHECK; Docker always keeps it) of the checkout (or $CONTEXT)
#           as TAG (default nekocord:test). The host CA bundle is bind-mounted for the build
#           only, for hosts whose HTTPS egress is re-signed by a local authority; nothing of
#           it ends up in the image. Docker has no build-time mounts: there, add the
#           authority to Docker's own trust instead (or build where PyPI is reached directly).
#
# Usage: scripts/container.sh tools | conf | base | build [TAG]
# Environment: CONTEXT (build context, default the checkout), NEKOCORD_BASE_CACHE (where the
# stand-in's root file system is kept), NEKOCORD_CONTAINER_WORK (logs and containers.conf).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${NEKOCORD_CONTAINER_WORK:-${TMPDIR:-/tmp}/nekocord-container}
BASE_IMAGE=docker.io/library/python:3.11-slim
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$WORK"
export CONTAINERS_CONF=$WORK/containers.conf

log() { echo "container.sh: $*" >&2; }

tools() {
    if command -v podman >/dev/null && command -v mmdebstrap >/dev/null; then
        return 0
    fi
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        log "podman is missing: install podman (and mmdebstrap) with your package manager"
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman buildah runc conmon fuse-overlayfs slirp4netns uidmap catatonit \
        containernetworking-plugins golang-github-containers-common mmdebstrap >/dev/null
}

conf() {
    local nofile nproc pid_max
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    [[ $nofile == unlimited ]] && nofile=1048576
    [[ $nproc == unlimited || $nproc -gt $pid_max ]] && nproc=$pid_max
    {
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
        if command -v runc >/dev/null; then
            printf '[engine]\nruntime = "runc"\n'
        fi
    } >"$CONTAINERS_CONF"
    echo "$CONTAINERS_CONF"
}

# The stand-in's root file system. Any change to this function changes the cache key.
standin_rootfs() {
    local out=$1 sources
    # The mirror and suites come from the host's apt configuration (a Debian 12 host).
    for sources in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [[ -s $sources ]] && break
    done
    mmdebstrap --quiet --mode=root --variant=minbase --format=tar --skip=output/dev \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='chroot "$1" python3 -m venv /opt/venv' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log' \
        bookworm "$out" "$sources"
}

base() {
    conf >/dev/null
    local key cache tar
    key=$(declare -f standin_rootfs | sha256sum | cut -c1-16)
    if podman image exists "$BASE_IMAGE"; then
        local label
        label=$(podman image inspect --format '{{index .Labels "nekocord.standin"}}' "$BASE_IMAGE")
        # A pulled image (no label) or the current stand-in: nothing to do.
        [[ -z $label || $label == "<no value>" || $label == "$key" ]] && return 0
    fi
    if [[ ${NEKOCORD_STANDIN:-} != 1 ]] && timeout 120 podman pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    log "cannot pull $BASE_IMAGE: using a local stand-in (Debian bookworm python3.11)"
    cache=${NEKOCORD_BASE_CACHE:-/var/cache/nekocord}
    mkdir -p "$cache" 2>/dev/null && [[ -w $cache ]] || cache=$WORK
    tar=$cache/python-3.11-slim-standin-$key.tar
    if [[ ! -s $tar ]]; then
        rm -f "$cache"/python-3.11-slim-standin-*.tar # other recipes' leftovers
        log "building the stand-in's root file system with mmdebstrap into $tar"
        standin_rootfs "$tar.partial" >"$WORK/mmdebstrap.log" 2>&1 ||
            { tail -30 "$WORK/mmdebstrap.log" >&2; rm -f "$tar.partial"; return 1; }
        mv "$tar.partial" "$tar"
    fi
    # /opt/venv/bin first on PATH gives `python` and `pip` like the official image's
    # /usr/local/bin (a venv, because Debian marks its system python EXTERNALLY-MANAGED).
    podman import --quiet \
        --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
        --change "LABEL nekocord.standin=$key" \
        --message 'local stand-in for python:3.11-slim (Debian bookworm python3.11 + venv)' \
        "$tar" "$BASE_IMAGE" >/dev/null
}

build() {
    conf >/dev/null
    local tag=${1:-nekocord:test} context=${CONTEXT:-$ROOT} mounts=()
    [[ -r $CA_BUNDLE ]] && mounts=(-v "$CA_BUNDLE:$CA_BUNDLE:ro")
    podman build --format docker --layers --pull=never -t "$tag" "${mounts[@]}" "$context"
}

case ${1:-} in
tools) tools ;;
conf) conf ;;
base) base ;;
build) build "${2:-}" ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
