# Prometheus 2 on the app image: `prometheus` and `promtool` come from the base's Debian
# package (its /etc/prometheus is unused: the launcher writes its own configuration); the
# launcher, the user, the data directories, the entry point and the health check come from
# the app image.
ARG APP_IMAGE

FROM ${APP_IMAGE}
RUN prometheus --version && promtool --version
# Last, so that a new commit's labels do not invalidate the cached layers above.
ARG REVISION
ARG SOURCE
ARG LOCK_SHA256
LABEL org.opencontainers.image.title="hipaa-mlops prometheus" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.hipaa-mlops.lock-sha256="${LOCK_SHA256}"
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=4s --start-period=120s --retries=5 \
    CMD ["python", "-m", "services.healthcheck"]
