"""`appliance reconfigure` as an admin runs it: real ansible-runner and ansible-playbook runs (in child
processes: Ansible is never imported into pytest) against small playbooks written for each test."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import unavailable
from tests.support import clean_environ

PLAYBOOK = """\
- name: Converge the test host
  hosts: all
  gather_facts: false
  tasks:
    - name: Create the output directory
      ansible.builtin.file:
        path: "{{ out }}"
        state: directory
        mode: "0755"
    - name: Copy the settings file
      ansible.builtin.copy:
        src: "{{ appliance_config_file }}"
        dest: "{{ out }}/appliance.toml"
        mode: "0600"
    - name: Record the interpreter
      ansible.builtin.copy:
        content: "{{ ansible_python_interpreter }}\\n"
        dest: "{{ out }}/python.txt"
        mode: "0644"
    - name: Touch the marker once
      ansible.builtin.command: touch "{{ out }}/marker"
      args:
        creates: "{{ out }}/marker"
    - name: Check the items
      ansible.builtin.command:
        argv: [/bin/sh, -c, "test $0 != bad || { echo $0 is refused >&2; exit 4; }", "{{ item }}"]
      loop: "{{ items | default('a') | split(',') }}"
      changed_when: false
    - name: Fail when asked
      ansible.builtin.command: /bin/sh -c "echo 'port 8443 is already taken' >&2; exit 3"
      when: fail_now | default(false) | bool
      changed_when: false
"""
#: ansible-runner starts ansible-playbook by name: the command puts the venv's bin on the PATH itself.
BARE_PATH = "/usr/bin:/bin"
#: Writes the variables the playbooks were given, as JSON, to ``out``.
RECORDING_PLAYBOOK = """\
- name: Record the variables
  hosts: all
  gather_facts: false
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: >-
          {{ {'greeting': greeting | default(none), 'port': port | default(none),
              'nested': nested | default(none), 'credentials': common_credentials_dir | default(none),
              'config': appliance_config_file} | to_json }}
        dest: "{{ out }}"
        mode: "0644"
"""
ETC = Path("/etc/forge-appliance")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A playbooks directory with site.yml, and the settings file it converges from."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "appliance.toml").write_text('mode = "embedded"\n')
    return playbooks


def reconfigure(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "appliance", "--config", str(tmp_path / "appliance.toml"), "reconfigure"]
    return subprocess.run(
        [*command, *args],
        env=env or clean_environ() | {"PATH": BARE_PATH},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )


def converge(tmp_path: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A converge that keeps its credentials under ``tmp_path`` (not in this machine's /etc)."""
    credentials = f"common_credentials_dir={tmp_path / 'credentials'}"
    return reconfigure(
        tmp_path, "--playbooks", str(site), "-e", f"out={tmp_path / 'out'}", "-e", credentials, *args
    )


def summary_row(stdout: str, host: str) -> list[int]:
    """ok, changed, failed, unreachable, skipped of ``host`` in the summary table."""
    (row,) = re.findall(rf"^  {re.escape(host)} +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", stdout, re.MULTILINE)
    return [int(n) for n in row]


def one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("appliance: error: ")
    return lines[0].removeprefix("appliance: error: ")


def test_converges_this_host_showing_each_task_then_a_second_run_changes_nothing(
    tmp_path: Path, site: Path
) -> None:
    first = converge(tmp_path, site)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert f"converging this host with {site}/site.yml (settings file {tmp_path}/appliance.toml)" in out
    assert "play: Converge the test host" in out
    # Each task as it starts, then how it ended on each host.
    assert "task: Create the output directory\n  changed: localhost\n" in out
    assert "task: Touch the marker once\n  changed: localhost\n" in out
    assert "task: Fail when asked\n  skipped: localhost\n" in out
    assert summary_row(out, "localhost") == [5, 4, 0, 0, 1]
    assert out.rstrip().endswith(
        "4 task(s) changed something:\n"
        "  localhost: Create the output directory\n"
        "  localhost: Copy the settings file\n"
        "  localhost: Record the interpreter\n"
        "  localhost: Touch the marker once"
    )
    # The settings file is the one the command found, passed to the playbooks as appliance_config_file;
    # this host runs modules with the venv's Python, reached without SSH.
    assert (tmp_path / "out/appliance.toml").read_text() == 'mode = "embedded"\n'
    assert (tmp_path / "out/python.txt").read_text() == f"{sys.executable}\n"

    second = converge(tmp_path, site)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "task: Touch the marker once\n  ok: localhost\n" in second.stdout
    assert summary_row(second.stdout, "localhost") == [5, 0, 0, 0, 1]
    assert second.stdout.rstrip().endswith("no task changed anything")


def test_this_host_joins_every_group_of_the_single_host_example(tmp_path: Path, site: Path) -> None:
    example = site / "inventories/example/single"
    example.mkdir(parents=True)
    (example / "hosts.yml").write_text(
        "all:\n  hosts:\n    appliance.example.com:\n  children:\n"
        "    app:\n      hosts:\n        appliance.example.com:\n"
        "    database:\n      hosts:\n        appliance.example.com:\n"
    )
    (site / "site.yml").write_text(
        "- name: The app hosts\n  hosts: app:&database\n  gather_facts: false\n  tasks:\n"
        "    - name: Note the groups\n      ansible.builtin.copy:\n"
        "        content: \"{{ group_names | join(',') }}\"\n"
        '        dest: "{{ out }}"\n        mode: "0644"\n'
    )
    run = converge(tmp_path, site)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "out").read_text() == "app,database"
    assert "appliance.example.com" not in run.stdout  # the example's host is not this one


def test_the_variables_file_is_passed_to_the_playbooks_under_the_command_line(
    tmp_path: Path, site: Path
) -> None:
    (site / "site.yml").write_text(RECORDING_PLAYBOOK)
    choices = tmp_path / "reconfigure.yml"
    choices.write_text(
        f"# the admin's choices\ngreeting: hello\nport: 8443\nnested: {{a: 1}}\nout: {tmp_path / 'out'}\n"
        f"common_credentials_dir: {tmp_path / 'kept'}\n"
    )
    config = tmp_path / "etc/appliance.toml"  # not there yet: the playbooks write it
    command = [sys.executable, "-m", "appliance", "--config", str(config), "reconfigure"]
    run = subprocess.run(
        [*command, "--playbooks", str(site), "--vars", str(choices), "-e", "port=9443"],
        env=clean_environ() | {"PATH": BARE_PATH},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"variables file: {choices}\n" in run.stdout
    assert f"(settings file {config})" in run.stdout
    assert json.loads((tmp_path / "out").read_text()) == {
        "greeting": "hello",
        "port": "9443",  # -e wins over the file
        "nested": {"a": 1},  # YAML's types kept
        "credentials": str(tmp_path / "kept"),  # the file's choice, over reconfigure's own
        "config": str(config),
    }


def test_a_variables_file_that_is_missing_or_not_a_mapping_is_named_and_nothing_runs(
    tmp_path: Path, site: Path
) -> None:
    choices = tmp_path / "reconfigure.yml"
    assert one_error_line(converge(tmp_path, site, "--vars", str(choices))) == (
        f"the variables file {choices} does not exist"
    )
    choices.write_text("- nginx_https_port: 8443\n")
    assert one_error_line(converge(tmp_path, site, "--vars", str(choices))) == (
        f"the variables file {choices} must be a YAML mapping of variable names to values (found list)"
    )
    choices.write_text("nginx_https_port: 8443\n  nginx_http_port: 8080\n")
    assert one_error_line(converge(tmp_path, site, "--vars", str(choices))).startswith(
        f"the variables file {choices} is not valid YAML (line 2): "
    )
    # The settings file's path is --config's (or APPLIANCE_CONFIG's): every later command reads it there.
    choices.write_text("appliance_config_file: /srv/appliance.toml\n")
    assert one_error_line(converge(tmp_path, site, "--vars", str(choices))) == (
        f"appliance_config_file in {choices}: name the settings file with --config or APPLIANCE_CONFIG "
        "instead (got '/srv/appliance.toml')"
    )
    assert one_error_line(converge(tmp_path, site, "-e", "appliance_config_file=/srv/x.toml")) == (
        "appliance_config_file in -e: name the settings file with --config or APPLIANCE_CONFIG "
        "instead (got '/srv/x.toml')"
    )
    assert not (tmp_path / "out").exists()


@pytest.fixture
def etc_forge_appliance() -> Iterator[Path]:
    """This machine's /etc/forge-appliance, made for the test and removed after (the test is skipped where
    one exists already: it belongs to a real install)."""
    if os.geteuid() != 0:
        unavailable("writing /etc/forge-appliance needs root")
    if ETC.exists():
        pytest.skip(f"{ETC} exists on this machine (a real install): left alone")
    try:
        yield ETC
    finally:
        shutil.rmtree(ETC, ignore_errors=True)


def test_this_host_reads_etc_reconfigure_yml_and_keeps_credentials_in_etc(
    tmp_path: Path, site: Path, etc_forge_appliance: Path
) -> None:
    (site / "site.yml").write_text(RECORDING_PLAYBOOK)
    etc_forge_appliance.mkdir()
    (etc_forge_appliance / "reconfigure.yml").write_text(f"greeting: from etc\nout: {tmp_path / 'out'}\n")
    run = reconfigure(tmp_path, "--playbooks", str(site))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"variables file: {etc_forge_appliance}/reconfigure.yml\n" in run.stdout
    recorded = json.loads((tmp_path / "out").read_text())
    assert recorded["greeting"] == "from etc"
    # The generated inventory is temporary: the passwords the roles generate are kept in /etc, root only.
    assert recorded["credentials"] == f"{etc_forge_appliance}/credentials"
    credentials = (etc_forge_appliance / "credentials").stat()
    assert stat.S_IMODE(credentials.st_mode) == 0o700
    assert credentials.st_uid == 0


#: Writes the package source the playbooks were given, as JSON, to ``out``.
SOURCE_PLAYBOOK = """\
- name: Record the package source
  hosts: all
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: >-
          {{ {'source': appliance_source_dir | default(none),
              'wheel': appliance_wheel | default(none)} | to_json }}
        dest: "{{ out }}"
        mode: "0644"
"""


def test_the_package_source_install_sh_recorded_beside_the_settings_file_is_used_unless_one_is_named(
    tmp_path: Path, site: Path
) -> None:
    (site / "site.yml").write_text(SOURCE_PLAYBOOK)
    checkout = tmp_path / "forge-appliance"
    checkout.mkdir()
    record = tmp_path / "source.yml"  # beside --config's appliance.toml, as install.sh writes it
    record.write_text(f"# written by install.sh\nappliance_source_dir: {json.dumps(str(checkout))}\n")
    choices = tmp_path / "reconfigure.yml"
    choices.write_text(f"out: {tmp_path / 'out'}\n")

    def given(*args: str) -> tuple[dict[str, object], str]:
        run = converge(tmp_path, site, "--vars", str(choices), *args)
        assert run.returncode == 0, run.stdout + run.stderr
        return json.loads((tmp_path / "out").read_text()), run.stdout

    # A plain run: no -e needed to converge this host again.
    recorded, out = given()
    assert recorded == {"source": str(checkout), "wheel": None}
    assert f"package: appliance_source_dir {checkout} (recorded by install.sh in {record})\n" in out
    # A source the admin names wins, and the recorded one is not passed beside it (the role takes one).
    assert given("-e", "appliance_source_dir=/srv/other")[0] == {"source": "/srv/other", "wheel": None}
    choices.write_text(f"out: {tmp_path / 'out'}\nappliance_wheel: /srv/forge.whl\n")
    recorded, out = given()
    assert recorded == {"source": None, "wheel": "/srv/forge.whl"}
    assert "recorded by install.sh" not in out
    # Other hosts (an inventory) do not get this host's checkout.
    choices.write_text(f"out: {tmp_path / 'out'}\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    assert given("--inventory", str(inventory))[0] == {"source": None, "wheel": None}


def test_a_recorded_package_source_that_is_gone_or_not_a_source_is_named_and_nothing_runs(
    tmp_path: Path, site: Path
) -> None:
    record = tmp_path / "source.yml"
    gone = tmp_path / "moved-away"
    record.write_text(f"appliance_source_dir: {gone}\n")
    assert one_error_line(converge(tmp_path, site)) == (
        f"the package source {gone} recorded in {record} does not exist: run install.sh --production from "
        "the checkout again, or name appliance_source_dir or appliance_wheel in the variables file"
    )
    record.write_text("nginx_https_port: 8443\n")
    assert one_error_line(converge(tmp_path, site)) == (
        f"{record} must name one package source, appliance_source_dir or appliance_wheel "
        "(found nginx_https_port): run install.sh --production again"
    )
    assert not (tmp_path / "out").exists()
    # Naming a source for the run does without the record.
    run = converge(tmp_path, site, "-e", f"appliance_source_dir={tmp_path}")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_locale_this_host_does_not_have_does_not_stop_the_converge(tmp_path: Path, site: Path) -> None:
    # An SSH client's LANG on a host without the locales package (Debian's minbase): Ansible refuses to
    # start under it, so the converge runs under C.UTF-8.
    env = clean_environ() | {"PATH": BARE_PATH, "LANG": "xx_YY.UTF-8"}
    env.pop("LC_ALL", None)
    credentials = f"common_credentials_dir={tmp_path / 'credentials'}"
    args = ("--playbooks", str(site), "-e", f"out={tmp_path / 'out'}", "-e", credentials)
    run = reconfigure(tmp_path, *args, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert summary_row(run.stdout, "localhost") == [5, 4, 0, 0, 1]


def test_an_error_ansible_prints_before_it_starts_is_the_error_line() -> None:
    # Ansible's own words when it cannot start (here: a locale it cannot set), not only its exit status.
    from appliance.cli.reconfigure.progress import Display, Progress

    with Display(io.StringIO(), tty=False, color=False) as display:
        progress = Progress(display)
        line = "ERROR: Ansible could not initialize the preferred locale: unsupported locale setting"
        progress.handle({"event": "verbose", "stdout": line})
    assert progress.errors == [
        "Ansible could not initialize the preferred locale: unsupported locale setting"
    ]


def test_a_debug_message_of_the_playbooks_is_shown(tmp_path: Path, site: Path) -> None:
    (site / "site.yml").write_text(
        "- name: Say\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Tell the admin\n      ansible.builtin.debug:\n"
        "        msg: >-\n          systemd is not PID 1 here;\n          services are started directly\n"
    )
    run = converge(tmp_path, site)
    assert run.returncode == 0, run.stdout + run.stderr
    said = "    systemd is not PID 1 here; services are started directly\n"
    assert f"task: Tell the admin\n  ok: localhost\n{said}" in run.stdout


def test_check_mode_shows_what_would_change_and_changes_nothing(tmp_path: Path, site: Path) -> None:
    run = converge(tmp_path, site, "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "check mode: nothing will be changed" in run.stdout
    assert "task: Copy the settings file\n  would change: localhost\n" in run.stdout
    assert '    +mode = "embedded"\n' in run.stdout  # the diff of the file it would write
    assert "4 task(s) would change something:" in run.stdout
    assert run.stdout.rstrip().endswith("check mode: nothing was changed")
    assert not (tmp_path / "out").exists()


def test_a_failing_task_stops_the_run_with_one_line_naming_host_task_and_message(
    tmp_path: Path, site: Path
) -> None:
    run = converge(tmp_path, site, "-e", "fail_now=true")
    assert one_error_line(run) == (
        'localhost: task "Fail when asked" failed: non-zero return code (rc 3): port 8443 is already taken'
    )
    assert "  failed: localhost: non-zero return code (rc 3): port 8443 is already taken" in run.stdout
    assert summary_row(run.stdout, "localhost") == [5, 4, 1, 0, 0]
    assert "{" not in run.stdout + run.stderr  # no JSON


def test_a_failed_loop_names_the_item_that_failed(tmp_path: Path, site: Path) -> None:
    run = converge(tmp_path, site, "-e", "items=a,bad,worse,bad")
    assert one_error_line(run) == (
        'localhost: task "Check the items" failed: '
        "item bad: non-zero return code (rc 4): bad is refused (and 1 more item(s))"
    )


def test_an_unreachable_host_fails_the_run_and_limit_leaves_it_out(tmp_path: Path, site: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        textwrap.dedent(f"""\
            localhost ansible_connection=local ansible_python_interpreter={sys.executable}
            web1 ansible_host=bogus.invalid ansible_connection=ssh
            """)
    )
    run = converge(tmp_path, site, "--inventory", str(inventory))
    error = one_error_line(run)
    assert error.startswith('web1: unreachable at task "Create the output directory": ')
    assert "Could not resolve hostname bogus.invalid" in error
    assert summary_row(run.stdout, "web1") == [0, 0, 0, 1, 0]
    assert summary_row(run.stdout, "localhost") == [5, 4, 0, 0, 1]  # the other host converged

    limited = converge(tmp_path, site, "--inventory", str(inventory), "--limit", "localhost")
    assert limited.returncode == 0, limited.stdout + limited.stderr
    assert "web1" not in limited.stdout
    assert summary_row(limited.stdout, "localhost") == [5, 0, 0, 0, 1]


def test_a_playbook_ansible_cannot_read_is_one_line_naming_the_problem(tmp_path: Path, site: Path) -> None:
    (site / "site.yml").write_text(
        "- name: Broken\n  hosts: all\n  tasks:\n    - name: Nothing\n      ansible.builtin.nosuch: {}\n"
    )
    error = one_error_line(converge(tmp_path, site))
    assert "ansible.builtin.nosuch" in error
    assert f"{site}/site.yml:4" in error


def test_missing_playbooks_inventory_or_bad_variables_are_named(tmp_path: Path, site: Path) -> None:
    missing = tmp_path / "nowhere"
    assert one_error_line(reconfigure(tmp_path, "--playbooks", str(missing))) == (
        f"the playbooks directory {missing} does not exist"
    )
    (site / "site.yml").unlink()
    assert one_error_line(reconfigure(tmp_path, "--playbooks", str(site))) == (
        f"{site}/site.yml does not exist (the playbooks directory has no site.yml)"
    )
    (site / "site.yml").write_text(PLAYBOOK)
    no_inventory = tmp_path / "hosts.ini"
    assert one_error_line(converge(tmp_path, site, "--inventory", str(no_inventory))) == (
        f"the inventory {no_inventory} does not exist"
    )
    assert one_error_line(converge(tmp_path, site, "-e", "novalue")) == "-e 'novalue': expected KEY=VALUE"
    assert not (tmp_path / "out").exists()


def test_without_the_production_extra_it_says_how_to_install_it(tmp_path: Path, site: Path) -> None:
    # ansible-runner made unimportable, as in an install without the production extra.
    shadow = tmp_path / "shadow" / "ansible_runner"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ansible_runner')\n")
    env = clean_environ() | {"PATH": BARE_PATH, "PYTHONPATH": str(shadow.parent)}
    error = one_error_line(reconfigure(tmp_path, "--playbooks", str(site), env=env))
    assert error == (
        "ansible-runner is not installed: "
        "install the production extra: pip install 'forge-appliance[production]'"
    )


def test_on_a_terminal_a_status_line_shows_the_running_task(tmp_path: Path, site: Path) -> None:
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "appliance", "--config", str(tmp_path / "appliance.toml"), "reconfigure"]
    credentials = f"common_credentials_dir={tmp_path / 'credentials'}"
    child = subprocess.Popen(
        [*command, "--playbooks", str(site), "-e", f"out={tmp_path / 'out'}", "-e", credentials],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={k: v for k, v in clean_environ().items() if k != "NO_COLOR"} | {"PATH": BARE_PATH},
        cwd=tmp_path,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert child.wait(timeout=180) == 0, output
    text = output.decode()
    assert re.search(r"\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Create the output directory  0:0\d", text)
    assert "\x1b[33mchanged\x1b[0m: localhost" in text  # the result word in colour
    assert "4 task(s) changed something:" in text


def test_the_help_lists_it_and_does_not_load_ansible_runner(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom appliance.cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', 'ansible_runner' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], env=clean_environ(), capture_output=True, text=True)
    assert "reconfigure" in run.stdout
    assert "LOADED False" in run.stdout
