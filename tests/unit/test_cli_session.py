"""The session file and the commands that write it, without a server."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
from click.testing import CliRunner

from kumo.cli import errors
from kumo.cli.context import DEFAULT_ENDPOINT, State
from kumo.cli.main import cli
from kumo.cli.session import (
    Session,
    SessionError,
    config_dir,
    delete_session,
    load_session,
    save_session,
    session_path,
)
from kumo.client import Client, KumoError
from kumo.identity.v1 import resources_pb2


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty config directory and no endpoint or token."""
    directory = tmp_path / "kumo"
    monkeypatch.setenv("KUMO_CONFIG_DIR", str(directory))
    monkeypatch.delenv("KUMO_ENDPOINT", raising=False)
    monkeypatch.delenv("KUMO_TOKEN", raising=False)
    return directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


SESSION = Session(endpoint="10.0.0.1:7900", token="t0k", project="projects/p", user="users/u")


def test_save_writes_mode_0600_in_a_0700_directory(config: Path) -> None:
    path = save_session(SESSION)
    assert path == config / "session.json" == session_path()
    assert mode(path) == 0o600
    assert mode(config) == 0o700
    assert load_session() == SESSION
    assert list(config.iterdir()) == [path]  # no temporary file left behind


def test_save_tightens_an_existing_file(config: Path) -> None:
    config.mkdir()
    (config / "session.json").write_text("{}")
    (config / "session.json").chmod(0o644)
    save_session(SESSION)
    assert mode(config / "session.json") == 0o600


def test_missing_file_is_no_session() -> None:
    assert load_session() is None
    assert delete_session() is False


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"project": "p"}'])
def test_corrupt_file_is_an_error(config: Path, text: str) -> None:
    config.mkdir()
    (config / "session.json").write_text(text)
    with pytest.raises(SessionError, match="kumo login"):
        load_session()


def test_unknown_keys_are_ignored(config: Path) -> None:
    config.mkdir()
    (config / "session.json").write_text('{"endpoint": "e", "token": "t", "future": 1}')
    assert load_session() == Session(endpoint="e", token="t")


def test_delete_removes_the_file() -> None:
    path = save_session(SESSION)
    assert delete_session() is True
    assert not path.exists()


def test_config_dir_fallbacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUMO_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "kumo"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "kumo"


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert State().endpoint() == DEFAULT_ENDPOINT
    monkeypatch.setenv("KUMO_ENDPOINT", "env:1")
    assert State().endpoint() == "env:1"
    save_session(SESSION)
    assert State().endpoint() == SESSION.endpoint
    assert State(endpoint="flag:1").endpoint() == "flag:1"


def test_session_token_stays_with_its_endpoint() -> None:
    save_session(SESSION)
    assert State().token() == "t0k"
    assert State(endpoint="other:1").token() is None
    assert State(endpoint="other:1", token="given").token() == "given"


def test_commands_need_a_session() -> None:
    result = CliRunner().invoke(cli, ["whoami"])
    assert result.exit_code == errors.DENIED
    assert result.stderr == f"error: not signed in to {DEFAULT_ENDPOINT}; run `kumo login`\n"


def test_corrupt_session_is_reported(config: Path) -> None:
    config.mkdir()
    (config / "session.json").write_text("{")
    result = CliRunner().invoke(cli, ["project", "list"])
    assert result.exit_code == errors.ERROR
    assert result.stderr.startswith("error: ") and "not a valid session file" in result.stderr


class FakeLogin:
    """Records Client.login calls and returns a token."""

    def __init__(self, error: KumoError | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.error = error

    def __call__(self, endpoint: str, user: str, password: str, project: str) -> Any:
        self.calls.append((endpoint, user, password, project))
        if self.error is not None:
            raise self.error
        token = resources_pb2.Token(
            token="secret-token", user=user, project=project, roles=[resources_pb2.ROLE_ADMIN]
        )
        token.expire_time.FromSeconds(1_700_000_000)
        client = type("C", (), {"close": lambda self: None})()
        return client, token


def test_login_prompts_for_the_password_and_saves_the_session(
    monkeypatch: pytest.MonkeyPatch, config: Path
) -> None:
    fake = FakeLogin()
    monkeypatch.setattr(Client, "login", fake)
    result = CliRunner().invoke(
        cli, ["login", "--endpoint", "h:1", "--user", "admin", "--project", "admin"], input="pw\n"
    )
    assert result.exit_code == 0, result.output
    assert fake.calls == [("h:1", "users/admin", "pw", "projects/admin")]
    assert "pw" not in result.output  # hidden input
    assert "signed in to h:1 as users/admin in projects/admin" in result.stdout
    assert "secret-token" not in result.stdout
    assert mode(config / "session.json") == 0o600
    assert load_session() == Session(
        endpoint="h:1",
        token="secret-token",
        project="projects/admin",
        user="users/admin",
        expire_time="2023-11-14T22:13:20Z",
    )


def test_login_reads_a_password_file_and_defaults_from_the_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    save_session(SESSION)
    fake = FakeLogin()
    monkeypatch.setattr(Client, "login", fake)
    password_file = tmp_path / "pw"
    password_file.write_text("from-file\nignored\n")
    result = CliRunner().invoke(cli, ["login", "--password-file", str(password_file)])
    assert result.exit_code == 0, result.output
    assert fake.calls == [(SESSION.endpoint, SESSION.user, "from-file", SESSION.project)]


def test_login_usage_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Client, "login", FakeLogin())
    (tmp_path / "pw").write_text("x")
    both = ["--password", "x", "--password-file", str(tmp_path / "pw")]
    result = CliRunner().invoke(cli, ["login", "--user", "a", "--project", "p", *both])
    assert result.exit_code == errors.USAGE
    result = CliRunner().invoke(cli, ["login", "--user", "projects/a", "--project", "p"])
    assert result.exit_code == errors.USAGE


def test_failed_login_keeps_the_old_session(monkeypatch: pytest.MonkeyPatch) -> None:
    save_session(SESSION)
    denied = KumoError(grpc.StatusCode.UNAUTHENTICATED, "wrong credentials", request_id="r9")
    monkeypatch.setattr(Client, "login", FakeLogin(denied))
    result = CliRunner().invoke(cli, ["login", "--password", "bad"])
    assert result.exit_code == errors.DENIED
    assert result.stderr == "error: wrong credentials (request r9)\n"
    assert load_session() == SESSION


class FakeClient:
    """Stands in for kumo.client.Client in logout."""

    revoked: ClassVar[list[str]] = []
    error: ClassVar[KumoError | None] = None

    def __init__(self, endpoint: str, token: str) -> None:
        self.identity = self

    def RevokeToken(self, request: Any) -> None:
        if self.error is not None:
            raise self.error
        self.revoked.append(request.token)

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None: ...


def test_logout_revokes_and_deletes(monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_session(SESSION)
    monkeypatch.setattr("kumo.cli.auth.Client", FakeClient)
    monkeypatch.setattr(FakeClient, "revoked", [])
    result = CliRunner().invoke(cli, ["logout"])
    assert result.exit_code == 0, result.output
    assert FakeClient.revoked == ["t0k"]
    assert not path.exists()


def test_logout_without_a_session_succeeds() -> None:
    result = CliRunner().invoke(cli, ["logout"])
    assert result.exit_code == 0
    assert "not signed in" in result.stderr


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [(grpc.StatusCode.UNAUTHENTICATED, 0), (grpc.StatusCode.UNAVAILABLE, errors.UNAVAILABLE)],
)
def test_logout_deletes_the_session_even_if_revoking_fails(
    monkeypatch: pytest.MonkeyPatch, code: grpc.StatusCode, exit_code: int
) -> None:
    path = save_session(SESSION)
    monkeypatch.setattr("kumo.cli.auth.Client", FakeClient)
    monkeypatch.setattr(FakeClient, "error", KumoError(code, "no"))
    result = CliRunner().invoke(cli, ["logout"])
    assert result.exit_code == exit_code
    assert not path.exists()
    if exit_code:
        assert "token was not revoked" in result.stderr
