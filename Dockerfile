# syntax=docker/dockerfile:1
# adpipeline on Apache Airflow 3: one image for every Airflow component (api-server, scheduler,
# dag-processor, triggerer, Celery workers). Build: docker build -t adpipeline:latest .   Run: see docker-compose.yaml.
#
# Nothing is downloaded at run time: the dlib face models come from the face-recognition-models package
# in requirements/lock.txt, installed here at build time like every other dependency.
FROM python:3.11-slim-bookworm

ARG UV_VERSION=0.13.9

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    AIRFLOW_HOME=/opt/airflow \
    ADP_HOME=/opt/adpipeline-data

# uv lives in its own virtual environment: `uv pip sync --system` removes whatever the lock does not list
# from the system interpreter, uv included, if uv were installed there.
RUN python -m venv /opt/uv \
 && /opt/uv/bin/pip install "uv==${UV_VERSION}" \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv

# Non-root runtime user, uid 50000 / gid 0 as in the official Airflow image.
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow \
 && mkdir -p /opt/airflow/logs /opt/airflow/secrets /opt/adpipeline-data /opt/adpipeline \
 && chown -R 50000:0 /opt/airflow /opt/adpipeline-data \
 && chmod -R g+rwX /opt/airflow /opt/adpipeline-data

WORKDIR /opt/adpipeline

# Dependencies first (cached until the lock changes). The sync installs exactly the lock, compiled to .pyc.
COPY requirements/lock.txt requirements/overrides.txt requirements/celery.txt requirements/
# (psycopg2-binary for the PostgreSQL metadata database is in the lock.) Then the CeleryExecutor's packages, resolved
# against the lock's pins (requirements/celery.txt says how), after the sync, which would remove them.
RUN uv pip sync --system --compile-bytecode requirements/lock.txt \
 && uv pip install --system --no-deps --compile-bytecode -r requirements/celery.txt

# The project (its SQL is package data in adpipeline/sql/).
# package), which the editable install keeps true.
COPY pyproject.toml README.md ./
COPY adpipeline/ adpipeline/
COPY dags/ dags/
COPY plugins/ plugins/
RUN uv pip install --system --no-deps --compile-bytecode -e ".[airflow,celery]" \
 && python -c "import adpipeline, airflow, dlib, cv2, duckdb, airflow.providers.celery; \
from adpipeline.faces.engine import dlib_model_dir; \
models = sorted(p.name for p in dlib_model_dir().glob('*.dat')); assert models, 'no dlib weights'; print(models)"

USER 50000

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/adpipeline/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/adpipeline/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

EXPOSE 8080
CMD ["airflow", "version"]
