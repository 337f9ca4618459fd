# nekocord: python -m bot in a slim image, as a non-root user, data in a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data

# The app's own user (uid 10001): the mounted /data must be writable by it (see README).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin nekocord \
    && mkdir -p /data && chown nekocord:nekocord /data

WORKDIR /app

# Dependencies in their own layer: only pyproject changes rebuild it.
COPY pyproject.toml README.md ./
RUN mkdir -p bot cogs && echo '__version__ = "0.0.0"' > bot/__init__.py \
    && pip install . && pip uninstall -y nekocord && rm -rf bot cogs build *.egg-info

COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps . && rm -rf build *.egg-info

USER nekocord
VOLUME ["/data"]

# Healthy while the bot keeps its gateway heartbeat file fresh (bot/health.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.health"]

# Exec form: python is PID 1 and receives SIGTERM, which the bot handles (clean exit in < 5 s).
CMD ["python", "-m", "bot"]
