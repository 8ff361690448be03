# The sovrisk gRPC service image: the package, the bundled dataset, nothing else.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY service ./service
COPY data ./data
RUN pip install --no-cache-dir . && useradd --system --uid 10001 sovrisk
USER sovrisk
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s \
  CMD ["python", "-m", "service.healthcheck", "127.0.0.1:50051"]
ENTRYPOINT ["sovrisk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "50051", "--data", "/app/data"]
