"""The test run's one Docker engine and its images, prepared in the background (tests/background.py) from
the end of the collection when a selected test needs them.

Building the base (debootstrap) and the appliance's images takes minutes on a fresh machine and mostly waits
on the network and the disk, so it overlaps the tests that run before the ones that use it.

* ``docker_engine`` (session) -> :class:`Engine`: a dockerd of the tests' own holding the Debian base image
  (``BASE_IMAGE``), stopped at the end of the run.
* ``appliance_images`` (session) -> :class:`Images`: the images of the container install built on it, as an
  admin builds them (compose/Dockerfile and compose/postgresql, compose/redis).

``SERVER`` (no fixture: tests/playbooks/test_hosts.py's converge waits for it in the background) ->
:class:`ServerImage`: the multi-host converge's server image built on the engine
(tests/playbooks/hosts/Dockerfile), and the appliance's wheels (tests/playbooks/machines.py).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest

from tests import background
from tests.compose.engine import (
    BASE_IMAGE,
    Engine,
    Images,
    build_base,
    build_context,
    build_image,
    engine,
)
from tests.playbooks.machines import ServerImage, build_server

APPLIANCE_IMAGE = "forge-appliance:test"
BUILD_STAGE_IMAGE = "forge-appliance-build:test"
POSTGRESQL_IMAGE = "forge-postgresql:test"
REDIS_IMAGE = "forge-redis:test"


def _start_engine(stack: contextlib.ExitStack) -> Engine:
    running = stack.enter_context(engine())
    build_base(running)
    return running


def _build_images(stack: contextlib.ExitStack) -> Images:
    """`docker-compose build`, as the README has the admin build them."""
    running = ENGINE.result()
    context = build_context(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa-ctx-"))))
    # The build stage tagged too, so that the engine's clean-up at the next run keeps its layers (the
    # dependencies' wheels) as cache.
    build_image(running, BUILD_STAGE_IMAGE, context, "compose/Dockerfile", "build", BASE_IMAGE=BASE_IMAGE)
    images = Images(APPLIANCE_IMAGE, POSTGRESQL_IMAGE, REDIS_IMAGE)
    names = {
        "FORGE_BASE_IMAGE": BASE_IMAGE,
        "FORGE_APPLIANCE_IMAGE": images.appliance,
        "FORGE_POSTGRESQL_IMAGE": images.postgresql,
        "FORGE_REDIS_IMAGE": images.redis,
    }
    compose_file = context / "compose" / "docker-compose.yml"
    running.run("docker-compose", "-f", str(compose_file), "build", timeout=1800, env=names)
    return images


def _build_server(stack: contextlib.ExitStack) -> ServerImage:
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa-srv-")))
    return build_server(ENGINE.result(), scratch)


ENGINE = background.Preparation("docker_engine", _start_engine)
IMAGES = background.Preparation("appliance_images", _build_images)
SERVER = background.Preparation("server_image", _build_server)


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """The run's engine, the Debian base image built on it."""
    return ENGINE.result()


@pytest.fixture(scope="session")
def appliance_images(docker_engine: Engine) -> Images:
    """The container install's images, built on the run's engine."""
    return IMAGES.result()
