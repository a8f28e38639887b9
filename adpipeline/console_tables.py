"""Tables for the terminal that fit its width, also when piped (Rich then assumes 80 columns).

A table is printed whole when its widest cells fit; otherwise its cells wrap under headers kept whole; when even the
headers do not fit side by side, each row becomes a block of ``column  value`` lines. Nothing is cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


class FitTable:
    """A titled table that chooses its layout from the width it is given (see the module doc)."""

    def __init__(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        self.title = title
        self.columns = [str(c) for c in columns]
        self.rows = [[str(v) for v in row] for row in rows]

    def _table(self, wrapped: bool) -> Table:
        table = Table(
            title=self.title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0)
        )
        for column in self.columns:
            if wrapped:  # headers whole (each word on a line at worst), cells folded under them
                longest_word = max((len(part) for part in column.split()), default=1)
                table.add_column(column, overflow="fold", min_width=max(longest_word, 6))
            else:
                table.add_column(column, no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table

    def layout(self, console: Console, width: int) -> str:
        """``whole``, ``wrapped`` or ``records``: how the table is drawn in ``width`` columns."""
        options = console.options.update_width(100_000)  # measured unclamped, compared with the real width
        if Measurement.get(console, options, self._table(wrapped=False)).maximum <= width:
            return "whole"
        if Measurement.get(console, options, self._table(wrapped=True)).minimum <= width:
            return "wrapped"
        return "records"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        layout = self.layout(console, options.max_width)
        yield self._records() if layout == "records" else self._table(wrapped=layout == "wrapped")

    def _records(self) -> Group:
        label = max(len(c) for c in self.columns)
        parts: list[Table | Text] = [Text(self.title, style="italic")]
        for index, row in enumerate(self.rows, 1):
            block = Table(box=None, show_header=False, pad_edge=False, title=f"#{index}", title_justify="left")
            block.add_column(min_width=label, no_wrap=True, style="bold")
            block.add_column(overflow="fold")
            for column, value in zip(self.columns, row, strict=True):
                block.add_row(column, value)
            parts.append(block)
        return Group(*parts)
