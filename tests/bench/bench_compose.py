"""Benchmark of the container install: what building it costs and what it weighs, against a baseline.

Run (as root: its own dockerd, debootstrap): .venv/bin/python tests/bench/bench_compose.py

On an engine with an empty data root (a fresh machine's), measures:
1. compose/build-base.sh from nothing (debootstrap of Debian 12 minbase, then `docker import`);
2. compose/Dockerfile's image from the base (no layer cached), and again after a change to the checkout
   only (the dependencies' layer cached: what a developer's rebuild costs), and the PostgreSQL and Redis
   images;
3. the image's size against the baseline: the same base with only the wheels installed, the plain
   single-stage way (tests/bench/wheels_only.Dockerfile), and against the base itself;
4. `docker-compose up -d` to a 200 from /health/ready on the published port: first up (empty volumes:
   initdb, roles, every migration) and up again after `docker-compose down` (volumes kept).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.compose.engine import (
    BASE_IMAGE,
    COMPOSE_DIR,
    Images,
    Stack,
    build_context,
    build_image,
    engine,
)
from tests.servers import free_port

MB = 1_000_000


def timed(what: str, rows: list[tuple[str, str]], action: object) -> float:
    start = time.monotonic()
    action()  # type: ignore[operator]
    seconds = time.monotonic() - start
    rows.append((what, f"{seconds:.1f} s"))
    print(f"{what}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> int:
    rows: list[tuple[str, str]] = []
    with engine(fresh=True) as running, tempfile.TemporaryDirectory(prefix="fa-bench-") as tmp:
        work = Path(tmp)

        def base() -> None:
            env = running.env | {"FORGE_BASE_CACHE": str(work / "base-cache")}
            subprocess.run(
                [str(COMPOSE_DIR / "build-base.sh"), BASE_IMAGE], env=env, check=True, capture_output=True
            )

        timed("base: debootstrap + import (build-base.sh, nothing cached)", rows, base)
        context = build_context(work / "context")
        dockerfile = "compose/Dockerfile"
        timed(
            "appliance image, no layer cached",
            rows,
            lambda: build_image(running, "forge-appliance:bench", context, dockerfile, BASE_IMAGE=BASE_IMAGE),
        )
        (context / "appliance" / "__init__.py").write_text(
            (context / "appliance" / "__init__.py").read_text() + "\n# changed\n"
        )
        timed(
            "appliance image, the checkout changed (dependencies' layer cached)",
            rows,
            lambda: build_image(running, "forge-appliance:bench", context, dockerfile, BASE_IMAGE=BASE_IMAGE),
        )
        for name, tag in (("postgresql", "forge-postgresql:bench"), ("redis", "forge-redis:bench")):
            timed(
                f"{name} image",
                rows,
                lambda tag=tag, name=name: build_image(
                    running, tag, COMPOSE_DIR / name, BASE_IMAGE=BASE_IMAGE
                ),
            )
        running.docker(
            "build", "--network=host", "--quiet", "--target=build", "--tag=forge-appliance-build:bench",
            f"--file={context / dockerfile}", f"--build-arg=BASE_IMAGE={BASE_IMAGE}", str(context),
        )  # fmt: skip
        bench_dir = Path(__file__).resolve().parent
        build_image(
            running, "forge-wheels-only:bench", bench_dir, "wheels_only.Dockerfile", BASE_IMAGE=BASE_IMAGE
        )
        sizes = {
            "base (forge-debian:12)": running.image_size(BASE_IMAGE),
            "appliance image (compose/Dockerfile)": running.image_size("forge-appliance:bench"),
            "baseline: base + wheels installed, single stage": running.image_size("forge-wheels-only:bench"),
            "postgresql image": running.image_size("forge-postgresql:bench"),
            "redis image": running.image_size("forge-redis:bench"),
        }
        baseline = sizes["baseline: base + wheels installed, single stage"]
        for name, size in sizes.items():
            rows.append((name, f"{size / MB:.0f} MB ({size / baseline:.2f} of the baseline)"))

        secrets = work / "secrets"
        subprocess.run([str(COMPOSE_DIR / "make-secrets.sh"), str(secrets)], check=True, capture_output=True)
        images = Images("forge-appliance:bench", "forge-postgresql:bench", "forge-redis:bench")
        stack = Stack(running, images, "fabench", secrets, free_port())
        try:
            timed("docker-compose up -d to /health/ready 200, empty volumes", rows, stack.up)
            stack.compose("down", "--timeout", "60")
            timed("docker-compose up -d to /health/ready 200, after down", rows, stack.up)
        finally:
            stack.compose("down", "--volumes", "--timeout", "60")

    print("\n| measure | figure |\n|---|---:|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
