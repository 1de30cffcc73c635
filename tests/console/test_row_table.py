"""The console's table measures in terminal cells: names with emoji, CJK and combining characters keep every
column in line, a long one is cut with "…" at the column's edge, and control characters are not sent."""

from __future__ import annotations

import asyncio

from rich.cells import cell_len
from textual.app import App, ComposeResult

from console.screens.tenants import COLUMNS, tenant_row
from console.widgets.row_table import RowTable, fit
from tests.console.pilot import until

WIDTH = 80
NAMES = [
    "Acme",
    "株式会社テスト",  # CJK: two cells each
    "Café ☕ Bar",  # an emoji of two cells
    "e\u0301cole cafe\u0301",  # combining accents: no cell of their own
    "👩‍💻 Devs ❤️",  # a joined emoji sequence, and an emoji with a variation selector
    "東京都港区芝公園四丁目の非常に長い名前の株式会社です",  # wider than its column: cut
    "tab\there\x1b[31mred",  # control characters: drawn as "�", never sent to the terminal
]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RowTable(COLUMNS)


def tenant(i: int, name: str) -> dict[str, object]:
    return {
        "id": f"t{i}",
        "slug": f"slug-{i}",
        "name": name,
        "plan": "team",
        "status": "active",
        "counts": {"users": 7, "projects": 3, "api_keys": 1},
    }


def test_wide_and_combining_characters_keep_the_columns_in_line() -> None:
    app = TableApp()

    async def scenario() -> None:
        async with app.run_test(size=(WIDTH, 12)) as pilot:
            table = app.query_one(RowTable)
            table.set_rows(tenant_row(tenant(i, name)) for i, name in enumerate(NAMES))
            await until(pilot, lambda: len(table.shown) == len(NAMES), "the rows")
            await pilot.pause()
            lines = [strip.text for strip in app.screen._compositor.render_strips()][: len(NAMES) + 1]
            header, rows = lines[0], lines[1:]

            def column(line: str, word: str) -> int:
                """Where `word` starts on the screen, in cells."""
                return cell_len(line[: line.index(word)])

            plan_at = column(header, "Plan")
            for line in rows:
                assert cell_len(line) == WIDTH, line
                assert column(line, "team") == plan_at, f"the Plan column moved in {line!r}"
                assert line.rstrip().endswith("7        3    1"), line  # the counts, right-aligned
            shown = dict(zip(NAMES, rows, strict=True))
            assert "株式会社テスト" in shown["株式会社テスト"]
            assert "e\u0301cole cafe\u0301" in shown["e\u0301cole cafe\u0301"]
            long_name = shown[NAMES[5]]
            assert "…" in long_name
            assert cell_len(long_name[: long_name.index("…") + 1]) == plan_at - 1  # cut at the column's edge
            assert "\x1b" not in shown[NAMES[6]]
            assert "\t" not in shown[NAMES[6]]
            assert "tab�here�[31mred" in shown[NAMES[6]]

    asyncio.run(scenario())


def test_fit_measures_cells() -> None:
    assert fit("株式会社", 5) == "株式…"
    assert fit("株式会社", 6) == "株式… "  # never half a wide character
    assert fit("👩‍💻💻💻", 4) == "👩‍💻… "  # nor half an emoji sequence
    assert fit("株式会社", 2) == "… "
    assert fit("e\u0301", 3, "right") == "  e\u0301"
    assert cell_len(fit("☕☕☕", 4)) == 4
