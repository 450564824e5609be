"""docs/ec2-operations.md is what scripts/gen-ec2-operations writes from the dispatch table,
and every handled action is an operation of botocore's EC2 model."""

from __future__ import annotations

from pathlib import Path

from kumo.gateway.aws.dispatch import HANDLERS
from kumo.gateway.aws.docs import operations_markdown
from kumo.gateway.aws.model import operation

DOC = Path(__file__).resolve().parents[2] / "docs" / "ec2-operations.md"


def test_operations_doc_is_current() -> None:
    assert DOC.read_text() == operations_markdown(), "run scripts/gen-ec2-operations"


def test_every_handled_action_is_in_the_model() -> None:
    assert [name for name in HANDLERS if operation(name) is None] == []
