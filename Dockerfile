# syntax=docker/dockerfile:1
# todo-api container image.
#   docker build -t todo-api .
#   docker run --rm todo-api migrate                      (once per release)
#   docker run -p 8000:8000 -e DATABASE_URL=... -e BETTER_AUTH_SECRET=... todo-api
# PYTHON_IMAGE is any Debian-based image with python3 (>= 3.11) and venv;
# scripts/image-smoke builds one locally with debootstrap.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt ./
# A build behind a TLS-intercepting proxy passes its CA as the secret
# `pip_ca`; it is used for this step only and never stored in a layer.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip install -r requirements.txt
COPY pyproject.toml setup.cfg README.md ./
COPY service ./service
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip install --no-deps . \
    && pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY sql /app/sql
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SQL_DIR=/app/sql \
    APP_ENV=production \
    LOG_FORMAT=json
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["todo-api"]
CMD ["serve"]
