# The Crypto API Exporter image: `docker build -t crypto-api-exporter .`
# Default command `run` probes the providers of the shipped providers.yaml (or
# PROVIDERS_FILE); `demo` runs the built-in simulator and the exporter together.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# Every interface inside the container (the default elsewhere is loopback only).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEB_LISTEN_ADDRESS=:7860
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --no-create-home exporter \
    && mkdir -p /var/lib/crypto-api-exporter && chown 10001:10001 /var/lib/crypto-api-exporter
# The incidents' SQLite file when INCIDENTS_DB points here (docker-compose.yml mounts a
# named volume, which Docker seeds with this directory's owner: writable by uid 10001).
USER 10001
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['WEB_LISTEN_ADDRESS'].rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["crypto-api-exporter"]
CMD ["run"]
