# hookpost: one image for the API, the worker and the one-shot migration.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system hookpost
USER hookpost

ENV HOOKPOST_HOST=0.0.0.0 HOOKPOST_PORT=8000 HOOKPOST_DATA_DIR=/tmp/hookpost
EXPOSE 8000 9100
CMD ["hookpost", "api"]
