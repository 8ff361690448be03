# The sovrisk service image: the package and the bundled dataset. The same image runs the gRPC
# server (`serve`) and the HTTP/JSON gateway (`gateway`); configuration comes from the
# environment (SOVRISK_STORE, SOVRISK_TOKENS, SOVRISK_HOST, SOVRISK_LOG_LEVEL; see
# docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SOVRISK_HOST=0.0.0.0 SOVRISK_STATE_DIR=/var/lib/sovrisk NUMBA_CACHE_DIR=/tmp/numba
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY service ./service
COPY data ./data
# sovrisk/ holds the package's __init__ and links to models/, service/ and data/ (copied as links).
COPY sovrisk ./sovrisk
# `--build-arg EXTRAS=server,ray` for an image that is also a Ray worker and can drive one
# (`--executor ray://...`, docs/scale.md); the default image does not carry Ray.
ARG EXTRAS=server
RUN pip install --no-cache-dir ".[${EXTRAS}]" \
 && useradd --system --uid 10001 sovrisk \
 && mkdir -p /var/lib/sovrisk && chown sovrisk /var/lib/sovrisk
USER sovrisk
VOLUME ["/var/lib/sovrisk"]
EXPOSE 50051 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
  CMD ["python", "-m", "sovrisk.service.healthcheck", "127.0.0.1:50051"]
ENTRYPOINT ["sovrisk"]
CMD ["serve", "--port", "50051", "--store", "/var/lib/sovrisk"]
