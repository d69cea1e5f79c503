# splineviz web app: docker build -t splineviz . && docker run -p 8050:8050 splineviz
# Scale-out: set SPLINEVIZ_CELERY_BROKER=redis://redis:6379/0 here and run the same image as workers with
#   docker run -e SPLINEVIZ_CELERY_BROKER=... splineviz celery -A splineviz.web.worker worker --concurrency 2
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SPLINEVIZ_CACHE_DIR=/tmp/splineviz-cache

WORKDIR /app

# CPU-only torch comes from the PyTorch CPU index (the default index would pull the CUDA build).
COPY requirements.txt .
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

# The app runs from /app (gunicorn puts it on sys.path), which is also where it finds assets/.
COPY app.py ./
COPY splineviz ./splineviz
COPY assets ./assets
RUN useradd --create-home splineviz
USER splineviz

EXPOSE 8050
# Sync workers are single-threaded, so forking background jobs from them is safe (see app.py).
CMD ["gunicorn", "app:server", "--bind", "0.0.0.0:8050", "--workers", "2", "--timeout", "120"]
