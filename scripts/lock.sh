#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml; run it after changing any dependency:
#
#     scripts/lock.sh                 # keep the current pins where they still fit
#     scripts/lock.sh --upgrade       # move every pin to the newest allowed release
#     scripts/lock.sh --upgrade-package aiohttp
#
#   requirements.lock      the bot's dependencies: what the Docker image installs
#   requirements-dev.lock  the same pins plus the dev extras: what .ci/run installs
#
# Both pin every distribution, with the hashes of every file PyPI has for that release, for
# every platform on Python >= 3.11 (a "universal" resolution). uv (a pinned release, installed
# into a cache directory when missing) does the resolving; it reads PyPI, not pip's config.
# tests/container/test_lock.py fails when pyproject.toml changed and this was not rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
uv=$(command -v uv || true)
if [[ -z $uv || $("$uv" --version) != "uv $UV_VERSION"* ]]; then
    tools=${XDG_CACHE_HOME:-$HOME/.cache}/nekocord-lock/uv-$UV_VERSION
    if [[ ! -x $tools/bin/uv ]]; then
        python3 -m venv "$tools"
        "$tools/bin/pip" install --quiet "uv==$UV_VERSION"
    fi
    uv=$tools/bin/uv
fi

compile() {
    "$uv" pip compile pyproject.toml --quiet --universal --python-version 3.11 \
        --generate-hashes --custom-compile-command scripts/lock.sh "$@"
}
compile -o requirements.lock "${@}"
# The dev lock is constrained by the runtime lock, so both pin the bot's dependencies alike.
compile --extra dev -c requirements.lock -o requirements-dev.lock "${@}"
echo "wrote requirements.lock ($(grep -c '^[a-z]' requirements.lock) pins)" \
    "and requirements-dev.lock ($(grep -c '^[a-z]' requirements-dev.lock) pins)"
