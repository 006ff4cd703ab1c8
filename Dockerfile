# Handoff production image: daphne (web) and qcluster (worker) run from the same image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HANDOFF_DATA_DIR=/data

WORKDIR /app

# CPU-only torch first, from PyTorch's CPU index: PyPI's default Linux wheel is the CUDA build
# (gigabytes of GPU libraries a support bot never uses). The ==2.13.0 pin in pyproject.toml is
# then already satisfied by 2.13.0+cpu.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
# Static files are collected at build time; settings need a key and a database URL to load,
# neither of which is used by collectstatic.
RUN SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput \
 && useradd --system --home /app handoff && mkdir -p /data && chown handoff /data

USER handoff
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "config.asgi:application"]
