"""The nginx role refuses bad input at the task that finds it, with one line naming the host, the task and
the value, before anything of it runs: a certificate that does not match its key, a port already taken."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.playbooks.support import failed_task, failure_lines, recap, run_playbook
from tests.servers import free_port

PLAY = """\
- name: The nginx role alone
  hosts: all
  gather_facts: false
  roles:
    - role: nginx
"""


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
        check=True,
    )
    return cert, key


def nginx_alone(tmp_path: Path, **overrides: object) -> subprocess.CompletedProcess[str]:
    variables: dict[str, object] = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "common_systemd": False,
        "common_config_dir": str(tmp_path / "etc"),
        "common_private_address": "127.0.0.1",
        "common_apt_cache_valid_time": 31536000,
        "nginx_upstreams": ["127.0.0.1:9"],
        "nginx_server_name": "localhost",
        "nginx_conf_file": str(tmp_path / "nginx.conf"),
        "nginx_pid_file": str(tmp_path / "nginx.pid"),
        "nginx_log_dir": str(tmp_path / "log"),
        "nginx_tls_dir": str(tmp_path / "tls"),
        "nginx_http_port": free_port(),
        "nginx_https_port": free_port(),
    } | overrides
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"testhost": variables}}}))
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    return run_playbook(play, inventory, timeout=600)


def test_a_certificate_that_does_not_match_its_key_stops_the_run(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, "one")
    _, other_key = self_signed(tmp_path, "two")
    run = nginx_alone(tmp_path, nginx_certificate=str(cert), nginx_certificate_key=str(other_key))
    assert run.returncode != 0
    assert recap(run.stdout)["testhost"]["failed"] == 1
    (line,) = failure_lines(run)
    assert (
        f"testhost: the certificate {cert} (nginx_certificate) does not match its key {other_key} "
        "(nginx_certificate_key)" in line
    )
    assert failed_task(run, line) == "nginx : Check that the certificate matches its key"
    assert not (tmp_path / "tls").exists()  # nothing was put in place
    assert not (tmp_path / "nginx.conf").exists()


def test_a_port_already_taken_stops_the_run_before_nginx_starts(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "one")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = nginx_alone(
            tmp_path, nginx_certificate=str(cert), nginx_certificate_key=str(key), nginx_http_port=port
        )
    assert run.returncode != 0
    (line,) = failure_lines(run)
    assert f"testhost: nginx's port {port} is already taken by another program" in line
    assert failed_task(run, line) == "nginx : Stop when another program holds an nginx port"
    assert not (tmp_path / "nginx.pid").exists()  # nginx was not started
    assert not (tmp_path / "nginx.conf").exists()


@pytest.mark.parametrize("port", [0, 70000])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: int) -> None:
    run = nginx_alone(tmp_path, nginx_https_port=port)
    assert run.returncode != 0
    (line,) = failure_lines(run)
    assert "nginx_http_port and nginx_https_port must be two different TCP ports" in line
    assert f"and {port})" in line
