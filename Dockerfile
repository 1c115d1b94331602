# todo-api container image. Build: docker build -t todo-api .
# Run:   docker run -e DATABASE_URL=... -e BETTER_AUTH_SECRET=... -p 8000:8000 todo-api
# Migrate (once per release, before serving): docker run ... todo-api migrate
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /src/
RUN pip install -r /src/requirements.txt
COPY pyproject.toml setup.cfg README.md /src/
COPY service /src/service
RUN pip install --no-deps /src

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
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["todo-api"]
CMD ["serve"]
