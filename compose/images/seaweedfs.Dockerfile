# SeaweedFS (master, volume, filer and S3 gateway in one `weed server`) on the app image,
# which brings the launcher, the user, the data directories, the entry point and the
# health check. Built by `make images`: the context holds only the `weed` binary that
# services/seaweedfs/build.py builds from its pinned Go module.
ARG APP_IMAGE

FROM ${APP_IMAGE}
ENV HIPAA_MLOPS_WEED_BINARY=/usr/local/bin/weed
COPY weed /usr/local/bin/weed
RUN ["weed", "version"]
# Last, so that a new commit's labels do not invalidate the cached layers above.
ARG REVISION
ARG SOURCE
ARG LOCK_SHA256
LABEL org.opencontainers.image.title="hipaa-mlops seaweedfs" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.hipaa-mlops.lock-sha256="${LOCK_SHA256}"
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=4s --start-period=120s --retries=5 \
    CMD ["python", "-m", "services.healthcheck"]
