# The auditlog image: one image, every long-running process picked by its command
# (`consume`, `sink`, `serve`, `integrity run`, `migrate`, `topics ensure`); see deploy/README.md.
#
#   docker build -t auditlog:0.1.0 .
#   docker run --rm auditlog:0.1.0 --help
#
# The base image is pinned by tag and digest: the digest of the multi-arch index of
# python:3.11-slim-bookworm (Python 3.11.16, built 2026-08-25) as docker-library/repo-info
# records it. To move to a newer build, pass another digest of the same tag:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# (tests/unit/test_dockerfile.py refuses a default that is not pinned by a digest).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

# --- builder: wheels of the runtime dependencies at the versions of constraints.txt, the
# project's own wheel, and a virtual environment with both. Compilers live only here (for
# platforms where a dependency has no binary wheel).
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first (their layer is reused until pyproject.toml or constraints.txt change):
# the runtime dependencies of pyproject.toml, at the exact versions of constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip wheel --wheel-dir /wheels --constraint constraints.txt --requirement requirements.txt
COPY README.md ./
COPY accounts/ accounts/
COPY auditlog/ auditlog/
COPY consumers/ consumers/
COPY deploy/ deploy/
COPY integrity/ integrity/
COPY producers/ producers/
COPY runtime/ runtime/
COPY schemas/ schemas/
COPY sinks/ sinks/
COPY viewer/ viewer/
RUN pip wheel --wheel-dir /wheels --no-deps . \
 && python -m venv --without-pip /opt/auditlog \
 && pip --python /opt/auditlog/bin/python install --no-index --find-links /wheels auditlog

# --- runtime: the Python runtime, the virtual environment, a non-root user. No compilers,
# no pip cache, no sources beyond the installed packages.
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/auditlog/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUDITLOG_METRICS_HOST=0.0.0.0 \
    AUDITLOG_VIEWER_HOST=0.0.0.0 \
    AUDITLOG_INTEGRITY_KEYS_DIR=/var/lib/auditlog/integrity-keys
RUN groupadd --system --gid 10001 auditlog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/auditlog \
        --create-home --shell /usr/sbin/nologin auditlog \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/auditlog/integrity-keys
COPY --from=builder /opt/auditlog /opt/auditlog
WORKDIR /home/auditlog
USER 10001:10001
# 9464: /metrics and /health of consume, sink and integrity run; 8080: the viewer (serve).
EXPOSE 9464 8080
# /health of the metrics port: 200 while ok, 503 while degraded or stopping. The viewer
# answers on its own port: its compose service and chart override this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('AUDITLOG_METRICS_PORT', '9464'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["auditlog"]
CMD ["--help"]
