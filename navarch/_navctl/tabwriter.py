"""Column alignment as kubectl's tab writer does it (Go's text/tabwriter semantics).

Text is lines of tab-separated cells. A cell followed by a tab belongs to a column; the
last cell of a line is not aligned. A column *block* is a run of consecutive lines that
all have a terminated cell in that column; every cell of a block is padded to the
block's widest cell plus ``padding`` (at least ``minwidth``). A line with fewer cells
ends the blocks of the columns it lacks, which is what lets ``describe`` indent nested
sections and still align each run of ``Key:\\tvalue`` lines on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["TabWriter", "align", "align_describe", "align_table", "table_writer"]


class TabWriter:
    """Aligns lines of tab-separated cells.

    With ``remember_widths`` a column never narrows across calls of ``align`` (kubectl's
    watch output stays aligned as rows arrive one at a time); columns still grow.
    """

    def __init__(self, minwidth: int, padding: int, *, remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self._remembered: dict[int, int] = {}

    def align(self, lines: Sequence[str]) -> list[str]:
        """The lines with their terminated cells padded; tabs removed."""
        rows = [line.split("\t") for line in lines]
        widths: list[dict[int, int]] = [{} for _ in rows]
        self._blocks(rows, widths, 0, len(rows), 0)
        out: list[str] = []
        for cells, cell_widths in zip(rows, widths, strict=True):
            parts = [cell.ljust(cell_widths[i]) for i, cell in enumerate(cells[:-1])]
            parts.append(cells[-1])
            out.append("".join(parts))
        return out

    def _blocks(self, rows: list[list[str]], widths: list[dict[int, int]],
                start: int, end: int, column: int) -> None:
        row = start
        while row < end:
            if column >= len(rows[row]) - 1:
                row += 1
                continue
            first = row
            width = max(self.minwidth, self._remembered.get(column, 0))
            while row < end and column < len(rows[row]) - 1:
                width = max(width, len(rows[row][column]) + self.padding)
                row += 1
            if self.remember_widths:
                self._remembered[column] = width
            for r in range(first, row):
                widths[r][column] = width
            self._blocks(rows, widths, first, row, column + 1)


def align(lines: Sequence[str], *, minwidth: int, padding: int) -> list[str]:
    """``lines`` aligned once (no remembered widths)."""
    return TabWriter(minwidth, padding).align(lines)


def table_writer(*, remember_widths: bool = False) -> TabWriter:
    """kubectl's table settings (get, api-resources): cells at least 6 wide, 3 apart."""
    return TabWriter(6, 3, remember_widths=remember_widths)


def align_table(lines: Sequence[str]) -> list[str]:
    """``lines`` aligned as kubectl aligns tables."""
    return table_writer().align(lines)


def align_describe(lines: Sequence[str]) -> list[str]:
    """``lines`` aligned as kubectl aligns describe output (2 apart, no minimum)."""
    return align(lines, minwidth=0, padding=2)
