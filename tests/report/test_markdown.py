"""Markdown helpers: number formats and tables."""

import math

from prism_marl.report import markdown


def test_number_formats():
    assert markdown.number(1.6 / 3) == "0.5333"
    assert markdown.number(1234.5) == "1234"  # four significant digits
    assert markdown.number(None) == markdown.number(math.nan) == "–"
    assert markdown.count(10574) == "10,574" and markdown.count(None) == "–"
    assert markdown.interval(0.1, 0.25) == "[0.1, 0.25]"


def test_table_escapes_cells_that_hold_a_bar():
    text = markdown.table(["task", "mabrax:humanoid_9|8"], [["x|y", 1]])
    assert text.splitlines() == [
        "| task | mabrax:humanoid_9\\|8 |",
        "|---|---|",
        "| x\\|y | 1 |",
    ]
