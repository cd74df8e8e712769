# The worker image: `python -m worker` by default; the same image runs the migrations
# (`python -m schema`), the advisory service (`python -m api`) and the CLI
# (`python -m starter ...`). No credentials are baked in: all configuration comes from the
# environment at run time (see docker-compose.temporal.yml).

# ---- shapes: the dashboard's world map (npm package world-atlas, Natural Earth 1:50m),
#      fetched at build time so the service never needs the network
FROM node:20-slim AS shapes
WORKDIR /shapes
RUN npm pack world-atlas@2.0.2 --silent \
    && tar -xzf world-atlas-2.0.2.tgz package/countries-50m.json package/LICENSE

# ---- build: install the project and its dependencies into a virtual environment
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY advisories ./advisories
COPY activities ./activities
COPY workflows ./workflows
COPY worker ./worker
COPY starter ./starter
COPY schema ./schema
COPY replay ./replay
COPY api ./api
COPY store ./store
COPY --from=shapes /shapes/package/countries-50m.json /shapes/package/LICENSE \
     ./advisories/render/vendor/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

# ---- run: the virtual environment only, as an unprivileged user
FROM python:3.11-slim

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DIR=/tmp/state

# The code lives in /opt/venv; the working directory holds nothing (no .env is read).
WORKDIR /app
USER app:app

# Prometheus endpoint when METRICS_BIND_ADDRESS=0.0.0.0:9464; the advisory service on 8000.
EXPOSE 9464 8000

CMD ["python", "-m", "worker"]
