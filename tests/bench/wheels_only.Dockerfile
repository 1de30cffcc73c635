# The baseline of tests/bench/bench_compose.py: the same Debian base with only the appliance's wheels
# installed, the plain single-stage way (Debian's Python and venv, the wheels copied in, pip install).
# BUILD_IMAGE is compose/Dockerfile's build stage (`--target build`), which holds the same wheels.
ARG BASE_IMAGE=forge-debian:12
ARG BUILD_IMAGE=forge-appliance-build:bench
FROM ${BUILD_IMAGE} AS build

FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN python3 -m venv /venv && /venv/bin/pip install --no-index --find-links /wheels forge-appliance
