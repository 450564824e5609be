"""The session file: where `kumo login` keeps the endpoint, token and project.

It lives in `$KUMO_CONFIG_DIR/session.json`, else
`$XDG_CONFIG_HOME/kumo/session.json`, else `~/.config/kumo/session.json`. It is
written atomically with mode 0600 (its directory 0700), since the token in it
is a credential.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FILE_NAME = "session.json"


class SessionError(Exception):
    """The session file exists but cannot be read or written."""


@dataclass(frozen=True)
class Session:
    """A signed-in session: which server, which token, which user and project."""

    endpoint: str
    token: str
    project: str = ""
    user: str = ""
    expire_time: str = ""


def config_dir() -> Path:
    """The directory holding the session file (not necessarily existing)."""
    if configured := os.environ.get("KUMO_CONFIG_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kumo"


def session_path() -> Path:
    """The session file's path."""
    return config_dir() / FILE_NAME


def load_session(path: Path | None = None) -> Session | None:
    """Reads the session; None if there is no session file.

    Raises SessionError if the file cannot be read or is not a session.
    """
    path = path or session_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SessionError(f"cannot read {path}: {error.strerror}") from error
    try:
        data = json.loads(text)
        known = {field.name for field in fields(Session)}
        return Session(**{key: str(value) for key, value in data.items() if key in known})
    except (ValueError, TypeError, AttributeError) as error:
        raise SessionError(f"{path} is not a valid session file; run `kumo login`") from error


def save_session(session: Session, path: Path | None = None) -> Path:
    """Writes the session atomically with mode 0600 and returns the path.

    Raises SessionError if the file cannot be written.
    """
    path = path or session_path()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o600)  # in case the file was left behind
            json.dump(asdict(session), stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise SessionError(f"cannot write {path}: {error.strerror}") from error
    return path


def delete_session(path: Path | None = None) -> bool:
    """Removes the session file; returns whether there was one.

    Raises SessionError if it exists but cannot be removed.
    """
    path = path or session_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise SessionError(f"cannot remove {path}: {error.strerror}") from error
    return True
