"""Errors raised for bad input: each renders as one line naming source, table or file, record and rule."""

from __future__ import annotations


class SourceError(Exception):
    """A problem with a source that stops its load; ``str()`` is a single line."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        table: str | None = None,
        file: str | None = None,
        record: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.source = source
        self.table = table
        self.file = file
        self.record = record
        self.rule = rule
        self.problem = problem
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"source '{self.source}'"]
        if self.table:
            parts.append(f"table '{self.table}'")
        if self.file:
            parts.append(f"file '{self.file}'")
        if self.record:
            parts.append(f"record '{self.record}'")
        if self.rule:
            parts.append(f"rule '{self.rule}'")
        message = f"{', '.join(parts)}: {self.problem}"
        return " ".join(message.split())
