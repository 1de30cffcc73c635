"""Settings: defaults, file and environment precedence, and one clear error for every bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from appliance.config import Settings
from appliance.configfile import load_settings, locate, redact_url, redacted, sources
from appliance.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "appliance.example.toml"


def load(path: Path | None, **env: str) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        return load_settings(path)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(body)
    return path


def test_no_file_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "d")
    assert settings.mode == "embedded"
    assert settings.database_url == f"sqlite:///{tmp_path / 'd' / 'appliance.db'}"
    assert settings.queue_url == f"sqlite:///{tmp_path / 'd' / 'queue.db'}"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8080)
    assert settings.secret_key_file == tmp_path / "d" / "secrets" / "signing.key"
    assert settings.run_dir == tmp_path / "d" / "run"


def test_the_public_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    settings = load(
        None, APPLIANCE_API__PUBLIC_URL="https://forge.example.com/x/", APPLIANCE_DATA_DIR=str(tmp_path)
    )
    assert settings.api.public_url == "https://forge.example.com/x"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[api]\nport = 9001\nhost = "0.0.0.0"\n')
    settings = load(path, APPLIANCE_API__PORT="9002")
    assert settings.api.port == 9002
    assert settings.api.host == "0.0.0.0"
    assert settings.api_url == "http://127.0.0.1:9002"


def test_search_order_explicit_then_variable(tmp_path: Path) -> None:
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text("")
    two.write_text("")
    assert locate(one, {"APPLIANCE_CONFIG": str(two)}) == one
    assert locate(None, {"APPLIANCE_CONFIG": str(two)}) == two


def test_named_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*missing\.toml does not exist"):
        load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[api\n", r"appliance\.toml: not valid TOML: .*line 1"),
        ("[api]\nprot = 1\n", r"key 'api\.prot': unknown key \(allowed here: .*port"),
        ('[api]\nport = "eighty"\n', r"key 'api\.port': .*valid integer.* \(got 'eighty'\)"),
        ("[api]\nport = 70000\n", r"key 'api\.port': .*less than or equal to 65535"),
        ('mode = "staging"\n', r"key 'mode': Input should be 'embedded', 'production' or 'development'"),
        ('[database]\nurl = "mysql://x/y"\n', r"key 'database\.url': .*'mysql' is not supported"),
        ('[queue]\nurl = "amqp://x"\n', r"key 'queue\.url': .*not a queue URL"),
        ('[api]\nmetrics_allow_from = ["nowhere"]\n', r"'nowhere' is not an IP network"),
        ("colour = 1\n", r"key 'colour': unknown key"),
        ('[api]\npublic_url = "forge.example.com"\n', r"key 'api\.public_url': .*not a base URL"),
        (
            '[api]\npublic_url = "https://forge.example.com/?x=1"\n',
            r"key 'api\.public_url': .*not a base URL",
        ),
    ],
)
def test_bad_file_names_file_key_and_expectation(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError, match=expected) as info:
        load(path)
    assert str(path) in str(info.value)


def test_bad_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment variable APPLIANCE_API__PORT: .*valid integer"):
        load(None, APPLIANCE_API__PORT="x", APPLIANCE_DATA_DIR=str(tmp_path))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.0/8", ("127.0.0.0/8",)),
        ("10.0.0.0/8, 192.168.0.0/16", ("10.0.0.0/8", "192.168.0.0/16")),
        ('["10.0.0.0/8", "::1/128"]', ("10.0.0.0/8", "::1/128")),
        ("", ()),
    ],
)
def test_a_list_in_the_environment_is_one_value_comma_separated_or_json(
    tmp_path: Path, value: str, expected: tuple[str, ...]
) -> None:
    settings = load(None, APPLIANCE_OUTBOUND__ALLOW_NETWORKS=value, APPLIANCE_DATA_DIR=str(tmp_path))
    assert settings.outbound.allow_networks == expected
    # A top-level section's list the same way, and a whole section as a JSON object.
    settings = load(None, APPLIANCE_API__TRUSTED_PROXIES=value, APPLIANCE_DATA_DIR=str(tmp_path))
    assert settings.api.trusted_proxies == expected
    section = load(
        None, APPLIANCE_OUTBOUND='{"allow_networks": ["10.0.0.0/8"]}', APPLIANCE_DATA_DIR=str(tmp_path)
    )
    assert section.outbound.allow_networks == ("10.0.0.0/8",)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "APPLIANCE_OUTBOUND__ALLOW_NETWORKS",
            "[10.0.0.0/8",
            r"environment variable APPLIANCE_OUTBOUND__ALLOW_NETWORKS: '\[10\.0\.0\.0/8' is not valid JSON "
            r".*expected a JSON array \(or comma-separated values",
        ),
        (
            "APPLIANCE_OUTBOUND__ALLOW_NETWORKS",
            '{"a": 1}',
            r"environment variable APPLIANCE_OUTBOUND__ALLOW_NETWORKS: .*'\{\"a\": 1\}' is not a network",
        ),
        (
            "APPLIANCE_OUTBOUND",
            "allow_networks=10.0.0.0/8",
            r"environment variable APPLIANCE_OUTBOUND: 'allow_networks=10\.0\.0\.0/8' is not valid JSON "
            r".*expected a JSON object .*APPLIANCE_OUTBOUND__KEY=value",
        ),
        (
            "APPLIANCE_API",
            "[1]",
            r"environment variable APPLIANCE_API: '\[1\]' is a JSON list; expected a JSON object",
        ),
        (
            "APPLIANCE_OUTBOUND__ALLOW_NETWORKS",
            "10.0.0.0/8,nowhere",
            r"environment variable APPLIANCE_OUTBOUND__ALLOW_NETWORKS: .*'nowhere' is not a network",
        ),
    ],
)
def test_a_bad_list_or_section_in_the_environment_is_named_with_its_value(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load(None, **{name: value, "APPLIANCE_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("body", "env", "blamed"),
    [
        # The file's value is fine; the variable's, which wins, is not.
        (
            '[outbound]\nallow_networks = ["10.0.0.0/8"]\n',
            {"APPLIANCE_OUTBOUND__ALLOW_NETWORKS": '["nowhere"]'},
            "environment variable APPLIANCE_OUTBOUND__ALLOW_NETWORKS",
        ),
        ("[api]\nport = 9000\n", {"APPLIANCE_API": '{"port": "x"}'}, "environment variable APPLIANCE_API:"),
        ("[api]\nport = 9000\n", {"APPLIANCE_API__PORT": "x"}, "environment variable APPLIANCE_API__PORT:"),
    ],
)
def test_an_environment_error_is_blamed_on_the_variable_not_the_file(
    tmp_path: Path, body: str, env: dict[str, str], blamed: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load(path, **env, APPLIANCE_DATA_DIR=str(tmp_path))
    assert str(info.value).startswith(blamed), str(info.value)
    assert str(path) not in str(info.value)


def test_sources_name_the_file_and_every_variable_with_secrets_masked(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    environ = {
        "APPLIANCE_API__PORT": "9000",
        "APPLIANCE_SECURITY__SECRET_KEY": "k" * 40,
        "APPLIANCE_DATABASE__URL": "postgresql+psycopg://app:hunter2@db/app",
        "APPLIANCE_SECURITY": '{"secret_key": "s3cret", "access_token_ttl": 60}',
        "APPLIANCE_CONFIG": str(path),
        "HOME": "/root",
    }
    assert sources(path, environ) == [
        f"file: {path}",
        "environment: APPLIANCE_API__PORT=9000",
        "environment: APPLIANCE_DATABASE__URL=postgresql+psycopg://app:***@db/app",
        'environment: APPLIANCE_SECURITY={"secret_key":"***","access_token_ttl":60}',
        "environment: APPLIANCE_SECURITY__SECRET_KEY=***",
    ]
    assert sources(None, {}) == ["file: none (built-in defaults)", "environment: no APPLIANCE_* variables"]


def test_unknown_environment_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"APPLIANCE_API__PROT names no setting \('api\.prot'"):
        load(None, APPLIANCE_API__PROT="1")


def test_install_scripts_variables_are_not_settings(tmp_path: Path) -> None:
    # APPLIANCE_ADMIN_EMAIL=... ./install.sh runs `appliance init` with it set.
    settings = load(None, APPLIANCE_ADMIN_EMAIL="ops@example.com", APPLIANCE_DATA_DIR=str(tmp_path))
    assert settings.data_dir == tmp_path


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _leaf_fields(annotation, f"{prefix}{name}.")
        else:
            names.append(f"{prefix}{name}")
    return names


def test_example_file_loads_and_documents_every_key(tmp_path: Path) -> None:
    settings = load(EXAMPLE, APPLIANCE_DATA_DIR=str(tmp_path))
    assert settings.mode == "embedded"
    text = EXAMPLE.read_text()
    tomllib.loads(text)
    for dotted in _leaf_fields(Settings):
        key = dotted.rsplit(".", 1)[-1]
        assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{dotted} is not documented in {EXAMPLE.name}"


def test_every_field_has_a_docstring() -> None:
    def check(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                check(annotation)
            else:
                assert field.description, f"{model.__name__}.{name} has no docstring"

    check(Settings)


def test_show_redacts_secrets_and_passwords(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database={"url": "postgresql+psycopg://app:hunter2@db:5432/app"},
        queue={"url": "redis://:s3cret@cache:6379/0"},
        security={"secret_key": SecretStr("x" * 40)},
    )
    shown = redacted(settings)
    assert shown["security"]["secret_key"] == "***"
    assert shown["database"]["url"] == "postgresql+psycopg://app:***@db:5432/app"
    assert "s3cret" not in str(shown)
    assert "hunter2" not in str(shown)
    assert redact_url("sqlite:////var/x.db") == "sqlite:////var/x.db"
