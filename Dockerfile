# The worker image: `python -m worker` by default; the same image runs the migrations
# (`python -m schema`) and the CLI (`python -m starter ...`). No credentials are baked in:
# all configuration comes from the environment at run time (see docker-compose.temporal.yml).

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

# Prometheus endpoint when METRICS_BIND_ADDRESS=0.0.0.0:9464.
EXPOSE 9464

CMD ["python", "-m", "worker"]
