"""The one Markdown table writer: a header row, the ``|---|`` separator, one line per row.

    print(markdown.table(("model", "accuracy"), [("cnn", "0.9123")]))
    for line in markdown.table_lines(header, measured_rows()):   # a benchmark: each row as soon as it exists
        print(line, flush=True)

Cells are written as ``str(cell)``, with ``|`` escaped so that a cell never splits; formatting numbers is the
caller's (each table has its own precision).
"""

from typing import Iterable, Iterator


def table_lines(header: Iterable, rows: Iterable[Iterable]) -> Iterator[str]:
    """The table's lines, lazily: the header and separator come before the first row is asked for, so a
    benchmark that measures its rows one by one shows each as it is measured."""
    header = [str(cell) for cell in header]
    yield _line(header)
    yield "|" + "---|" * len(header)
    for row in rows:
        yield _line(row)


def table(header: Iterable, rows: Iterable[Iterable]) -> str:
    """The table as one string (no final newline)."""
    return "\n".join(table_lines(header, rows))


def _line(cells: Iterable) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
