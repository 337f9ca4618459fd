# nekocord: python -m bot in a slim image, as a non-root user, data in a volume.
# Build with `docker build -t nekocord .` (or `docker compose build`). With podman or buildah
# add `--format docker`: their default OCI format drops the HEALTHCHECK below.
# scripts/container.sh builds it on machines without registry access; tests/container/ checks it.

# Stage 1: the app as a wheel. Only this stage sees the source tree.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the image.
FROM python:3.11-slim

# PYTHONSAFEPATH: `python -m bot` imports the installed package, never files in the working
# directory.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONSAFEPATH=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data

# The app's own user and group (uid and gid 10001): the mounted /data must be writable by it
# (see README).
RUN groupadd --gid 10001 nekocord \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin nekocord \
    && mkdir -p /data && chown nekocord:nekocord /data

# Dependencies in their own layer, from the lock file alone (exact versions, hash-checked):
# only a relock (scripts/lock.sh) rebuilds it, not a change to the code or the README.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock

# The app, once, in site-packages: the wheel from stage 1, without touching the dependencies;
# `pip check` fails the build if the lock misses one. (A bind mount from stage 1 would leave
# not even the wheel in a layer, but buildah 1.28, podman 4.3's, then reuses a cached layer
# when only the wheel changed.)
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels && pip check

# Numeric, so Kubernetes' runAsNonRoot can verify it (it cannot resolve a name); the Helm
# chart's runAsUser/runAsGroup are the same ids.
USER 10001:10001
VOLUME ["/data"]

# Healthy while the bot keeps its gateway heartbeat file fresh (bot/health.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.health"]

# Exec form: python is PID 1 and receives SIGTERM, which the bot handles (clean exit in < 5 s).
CMD ["python", "-m", "bot"]
