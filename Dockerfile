# Image for compose.yaml (api, worker, migrate). Installs exactly the locked dependencies.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md alembic.ini ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
ENV ORCHESTRATOR_HOST=0.0.0.0
EXPOSE 8000
CMD ["orchestrator", "run", "--no-worker"]
