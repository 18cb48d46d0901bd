"""Plain-text tables for the command line: a header and rows, columns padded to fit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import click


def echo_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print ``header`` and ``rows`` with two spaces between columns, no trailing blanks."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
