"""Every RPC of Kumo's services is exercised by some integration test over a real channel."""

from __future__ import annotations

import re
from pathlib import Path

from kumo.server.app import method_names

HERE = Path(__file__).resolve()


def _integration_test_text() -> str:
    """The source of every integration test module except this one."""
    return "\n".join(
        path.read_text() for path in sorted(HERE.parent.glob("test_*.py")) if path != HERE
    )


def test_every_method_appears_in_an_integration_test() -> None:
    """Each method name (as a whole word, not a `...Request` type) occurs in some test module."""
    text = _integration_test_text()
    missing = [
        path
        for path in method_names()
        if not re.search(rf"\b{re.escape(path.rsplit('/', 1)[1])}\b", text)
    ]
    assert not missing, f"methods no integration test calls: {missing}"
