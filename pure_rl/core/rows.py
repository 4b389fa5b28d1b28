"""Data rows: read with their line numbers, checked field by field, bad ones skipped and counted, never trained on.

A task builds each ``Problem`` from one record and raises ``BadRow(field, reason)`` for a record it cannot use (a
field missing, null, empty or of the wrong type; a line that is not JSON). ``RowTally`` keeps, per source, how
many rows were read and which were bad (file, line, field, reason), warns in one line per bad row (the first few,
then a count), and refuses the whole source with one ``DataError`` line when more than a set share is bad:
a file that is mostly broken is the wrong file, not a file with a few bad rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SHOWN_BAD_ROWS = 5  # bad rows warned about one by one; the rest are counted


class DataError(ValueError):
    """A data source cannot be used: unreadable, empty, offline, or with too many bad rows. One line."""


class BadRow(ValueError):
    """One record a task cannot turn into a problem; ``field`` is None when the row itself is broken."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(f"field {field!r}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def text_field(record: Mapping[str, Any], name: str) -> str:
    """``record[name]`` as non-empty text, else ``BadRow`` (missing, null, empty, or not a string)."""
    if name not in record:
        raise BadRow(name, "missing")
    value = record[name]
    if value is None:
        raise BadRow(name, "null")
    if not isinstance(value, str):
        raise BadRow(name, f"a {type(value).__name__}, not text")
    if not value.strip():
        raise BadRow(name, "empty")
    return value


@dataclass
class RowTally:
    """Rows read from one source and the bad ones among them: (where, field, reason)."""

    source: str  # a file path, or "hub_id[split]"
    unit: str = "line"  # how a row is located: "line" (1-based line of a file) or "row" (index in a dataset)
    rows: int = 0
    bad: list[tuple[int, str | None, str]] = field(default_factory=list)

    def where(self, position: int) -> str:
        return f"{self.source} {self.unit} {position}"

    def add_bad(self, position: int, row: BadRow) -> None:
        self.bad.append((position, row.field, row.reason))
        if len(self.bad) <= SHOWN_BAD_ROWS:
            log.warning("skipping bad row: %s: %s", self.where(position), row)

    @property
    def share(self) -> float:
        return len(self.bad) / self.rows if self.rows else 0.0

    def first_bad(self) -> str:
        position, name, reason = self.bad[0]
        return f"{self.where(position)}: " + (f"field {name!r}: {reason}" if name else reason)

    def check(self, max_fraction: float, key: str = "task.max_bad_row_fraction") -> None:
        """Warn with the count of bad rows; ``DataError`` when their share exceeds ``max_fraction``."""
        if not self.bad:
            return
        if self.share > max_fraction:
            raise DataError(f"{self.source}: {len(self.bad)} of {self.rows} rows are bad ({100 * self.share:.1f}% > "
                            f"{key}={max_fraction:g}); first: {self.first_bad()}")
        log.warning("%s: skipped %d bad rows of %d (first: %s)", self.source, len(self.bad), self.rows, self.first_bad())

    def merge(self, other: RowTally) -> None:
        self.rows += other.rows
        self.bad.extend(other.bad)


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value or ``BadRow``) for every non-blank line; ``DataError`` for an empty file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); is it a JSONL file?") from exc
    except OSError as exc:
        raise DataError(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{file}: empty file (no JSON rows); point the data path at the JSONL with the data")
    for n, line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, BadRow(None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        yield n, value if isinstance(value, dict) else BadRow(None, f"a JSON {type(value).__name__}, not an object")


def usable_problems(problems: list[Any], tally: RowTally | None, max_fraction: float, what: str,
                    key: str = "task.max_bad_row_fraction") -> list[Any]:
    """``problems`` without those whose prompt or question is missing or empty, each counted as a bad row
    (in ``tally`` when the task kept one, else in a tally of its own), then the share of bad rows checked."""
    tally = tally if tally is not None else RowTally(what, unit="problem", rows=len(problems))
    good = []
    for i, problem in enumerate(problems):
        for name in ("prompt", "question"):
            value = getattr(problem, name, None)
            if not isinstance(value, str) or not value.strip():
                tally.add_bad(i, BadRow(name, "missing" if value is None else "empty"))
                break
        else:
            good.append(problem)
    tally.check(max_fraction, key)
    if not good:
        raise DataError(f"{what}: no usable problems ({tally.rows} rows read)")
    return good
