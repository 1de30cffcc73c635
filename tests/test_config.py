"""Settings: defaults, file and environment precedence, and one clear error for every bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from appliance.config import Settings
from appliance.configfile import load_settings, locate, redact_url, redacted
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


def test_unknown_environment_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"APPLIANCE_API__PROT names no setting \('api\.prot'"):
        load(None, APPLIANCE_API__PROT="1")


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
