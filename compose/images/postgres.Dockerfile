# PostgreSQL 15 on the app image. Its files come from server-postgres.tar, which `make
# images` (services/containers/images.py) makes by installing Debian's postgresql-15 in a
# copy of the base's root file system (no cluster created) and keeping what that adds or
# changes, the account files, logs and caches aside: ADD unpacks a local tarball, nothing
# is fetched. It carries the updated /etc/ld.so.cache and dpkg's status. The launcher, the
# user, the data directories, the entry point and the health check come from the app image.
ARG APP_IMAGE

FROM ${APP_IMAGE}
ADD server-postgres.tar /
# As the servers run: uid 10001, which the app image's USER already is.
RUN test "$(id -u)" = 10001 \
    && /usr/lib/postgresql/15/bin/postgres --version \
    && /usr/lib/postgresql/15/bin/initdb --version \
    && /usr/lib/postgresql/15/bin/pg_isready --version \
    && ldconfig -p | grep -q libpq.so.5
# Last, so that a new commit's labels do not invalidate the cached layers above.
ARG REVISION
ARG SOURCE
ARG LOCK_SHA256
LABEL org.opencontainers.image.title="hipaa-mlops postgres" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.hipaa-mlops.lock-sha256="${LOCK_SHA256}"
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=4s --start-period=120s --retries=5 \
    CMD ["python", "-m", "services.healthcheck"]
