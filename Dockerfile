# syntax=docker/dockerfile:1
# The watchdog daemon image: docker build -t watchdog:0.1.0 .
# Run: docker run -v $PWD/conf:/etc/watchdog:ro -v $PWD/creds:/run/credentials/watchdog:ro \
#        -e CREDENTIALS_DIRECTORY=/run/credentials/watchdog -p 127.0.0.1:9464:9464 watchdog:0.1.0
# (conf/watchdog.yaml must say listen: 0.0.0.0:9464 to be reachable from outside.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: the project's wheel and the wheels of its dependencies -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY watchdog ./watchdog
# every dependency at its locked version (make lock), the same set CI tests
RUN python -m pip wheel --constraint requirements.lock --wheel-dir /wheels .

# -- runtime: no compiler, no sources, no pip cache, not root -----------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels watchdog-privacy \
    && groupadd --system --gid 10001 watchdog \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/watchdog \
       --no-create-home --shell /usr/sbin/nologin watchdog \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/watchdog \
    && install -d -m 0755 /etc/watchdog
# The bytecode was compiled at install time; the root filesystem can be read-only.
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/watchdog
USER 10001:10001
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["watchdog"]
CMD ["run", "--config", "/etc/watchdog/watchdog.yaml"]
