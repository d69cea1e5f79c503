# splineviz in one image: the web app (default), experiments, and Celery workers. CPU only, no browser.
#   docker build -t splineviz .
#   docker run -p 8050:8050 -e SPLINEVIZ_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') splineviz
#   docker run -v "$PWD/runs:/app/runs" splineviz python -m splineviz.experiments xshape --quick
# Scale-out: give the web containers and the workers the same SPLINEVIZ_SECRET_KEY and SPLINEVIZ_CELERY_BROKER
# (e.g. redis://redis:6379/0), and start workers with: docker run ... splineviz celery -A splineviz.web.worker worker
# Build arguments: BASE (any Debian-like image with python3 3.11 and venv), PYPI_INDEX, TORCH_INDEX, CA_BUNDLE
# (a CA file inside the build context's base image for pip, where a proxy re-signs TLS).
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG PYPI_INDEX=https://pypi.org/simple
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG CA_BUNDLE=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib \
    SPLINEVIZ_CACHE_DIR=/tmp/splineviz-cache \
    NUMBA_CACHE_DIR=/opt/numba-cache \
    PORT=8050

WORKDIR /app

# Every package pinned with its hashes. Each index serves only its own lock file (--no-deps, one --index-url):
# torch from the PyTorch CPU index, everything else from PyPI; `pip check` proves the set is complete.
COPY requirements.lock requirements-torch.lock ./
RUN python3 -m venv /opt/venv \
 && pip install ${CA_BUNDLE:+--cert "$CA_BUNDLE"} --no-deps --require-hashes --index-url "$TORCH_INDEX" \
        -r requirements-torch.lock \
 && pip install ${CA_BUNDLE:+--cert "$CA_BUNDLE"} --no-deps --require-hashes --index-url "$PYPI_INDEX" \
        -r requirements.lock \
 && pip check

# The app runs from /app (gunicorn puts it on sys.path and reads gunicorn.conf.py here); assets/ sits beside it.
COPY app.py gunicorn.conf.py ./
COPY splineviz ./splineviz
COPY assets ./assets
# numba compiles the partition kernels here, once (minutes), instead of in every container's first trace; the cache
# stays writable, as numba wants of a cache directory, so that the app's user can load it
RUN mkdir -p /opt/numba-cache && python -c "from splineviz.partition.tracer import load_kernels; load_kernels()" \
 && chmod -R a+rwX /opt/numba-cache
RUN useradd --create-home splineviz && mkdir runs && chown splineviz runs
USER splineviz

EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/healthz\", timeout=4)"]
# Two sync workers (jobs are fork()ed from single-threaded workers, see app.py): needs SPLINEVIZ_SECRET_KEY.
# PORT (default 8050) moves the app and its health check together.
CMD ["sh", "-c", "exec gunicorn app:server --bind 0.0.0.0:${PORT} --workers 2"]
