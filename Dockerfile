FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKER_API_HOST=0.0.0.0 \
    TASKER_SECRETS_DIR=/app/secret

# curl: used by the compose healthcheck and handy for `docker compose exec api curl ...`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

# Copy only what the package needs: secret/, .tasker/, tests and benchmarks stay out of the image.
COPY pyproject.toml README* /src/
COPY api /src/api
COPY cli /src/cli
COPY controller /src/controller
COPY core /src/core
COPY db /src/db
COPY tasker /src/tasker
RUN pip install --no-cache-dir /src && rm -rf /src

RUN useradd --create-home --uid 10001 tasker \
    && mkdir -p /app/secret \
    && chown -R tasker:tasker /app

USER tasker
WORKDIR /app

EXPOSE 5000
CMD ["tasker", "api"]
