"""What the agent has carried out per guest, kept in `<state_dir>/state.json`.

The API's serials (reboot, rebuild, snapshot, resize) say what is wanted; these
records say what was done, so a restarted agent neither repeats nor loses an
action. They also remember the agent's part in live migrations: a guest being
prepared to arrive here (`incoming`), the last migration sent from here
(`migrated`, and `left` when the guest went), and where this host's console file
starts in the guest's console stream (`console_base`; -1 until the console pump
has asked the API, for a guest that arrived by migration).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERIALS = ("reboot_serial", "rebuild_serial", "snapshot_serial", "resize_serial")
"""The assignment's serials a Done record mirrors."""


@dataclass
class Done:
    """What was carried out for one guest."""

    reboot_serial: int = 0
    rebuild_serial: int = 0
    snapshot_serial: int = 0
    resize_serial: int = 0
    incoming: int = 0
    migrated: int = 0
    left: bool = False
    console_base: int = 0

    @classmethod
    def of(cls, a: Any) -> Done:
        """Every serial of the assignment as done (a guest built or adopted now)."""
        done = cls()
        for name in SERIALS:
            setattr(done, name, int(getattr(a, name)))
        return done


def _record(entry: dict[str, Any]) -> Done:
    """A Done from its JSON form (fields missing in older files keep their defaults)."""
    done = Done()
    for f in fields(Done):
        default = getattr(done, f.name)
        setattr(done, f.name, type(default)(entry.get(f.name, default)))
    return done


class StateFile:
    """`state.json`: the Done records by instance uid, written atomically."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, Done] = {}
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable %s: %s", self.path, error)
            return
        blank = Done()
        for uid, entry in (data.get("instances") or {}).items():
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                self.done[uid] = Done(
                    **{
                        f.name: type(getattr(blank, f.name))(
                            entry.get(f.name, getattr(blank, f.name))
                        )
                        for f in fields(Done)
                    }
                )

    def get(self, uid: str) -> Done | None:
        """The record of `uid`, or None."""
        return self.done.get(uid)

    def put(self, uid: str, done: Done) -> None:
        """Records `done` for `uid` and saves the file."""
        self.done[uid] = replace(done)
        self.save()

    def drop(self, uid: str) -> None:
        """Forgets `uid` (and saves) if it is recorded."""
        if self.done.pop(uid, None) is not None:
            self.save()

    def save(self) -> None:
        """Writes the file atomically (temporary file, fsync, rename)."""
        data = {
            "version": self.VERSION,
            "instances": {uid: asdict(d) for uid, d in sorted(self.done.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path)
