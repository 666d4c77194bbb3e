# The mock QRM server as a container: `docker run -e MOCK_QRM_API_KEY=... -p 8765:8765 IMAGE`.
# The same image runs the receiver (`receiver --host 0.0.0.0`) and the browser app
# (entrypoint `qrm-tui`, `--web`); see compose.yaml and the README.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY fixtures ./fixtures
COPY mock_qrm ./mock_qrm
COPY qrm_tui ./qrm_tui
RUN pip install . && rm -rf /src

# A non-root user owning the one writable place: the database lives on the /data volume.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home qrm \
    && mkdir /data && chown qrm:qrm /data
USER qrm
WORKDIR /data
VOLUME /data

ENV MOCK_QRM_DB=/data/mock-qrm.sqlite3 \
    MOCK_QRM_PORT=8765 \
    MOCK_QRM_RECEIVER_PORT=8766
EXPOSE 8765 8766

# No curl in the slim image: Python asks /healthz (never behind the API key).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MOCK_QRM_PORT', '8765'), timeout=2)"]

ENTRYPOINT ["mock-qrm"]
CMD ["serve", "--host", "0.0.0.0"]
