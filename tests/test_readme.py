"""The README's demo table is what ``auditkit demo`` prints: its header, a row for every planted
cell with the planted value, and the total time under five minutes. The e2e demo test compares
the rows of a real (short) run with these."""

from __future__ import annotations

import re
from pathlib import Path

from auditkit.demo import AUDIT_EDITS, CONTRASTS, TABLE_HEADER, planted_cells

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- demo-table: begin", "<!-- demo-table: end -->"


def readme_demo_output() -> str:
    """The text between the README's demo-table markers, without its code fence."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN):text.index(END)]
    lines = block.splitlines()[1:]
    assert lines[0] == "```" and lines[-1] == "```", "the demo table is one fenced block"
    return "\n".join(lines[1:-1])


def table_rows(output: str) -> list[tuple[str, ...]]:
    """The rows of a printed demo table (header and rule excluded), as their columns: cut where
    the rule under the header has its dashes (an edit's name may hold spaces)."""
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["edit", "trait"])
    spans = [m.span() for m in re.finditer(r"-+", lines[head + 1])]
    rows = []
    for line in lines[head + 2:]:
        if not line.strip():
            break
        rows.append(tuple(line[a:b].strip() for a, b in spans))
    return rows


def planted_rows(output: str) -> set[tuple[str, str, str]]:
    """(edit, trait, planted) of the rows with a planted value."""
    return {(r[0], r[1], r[2]) for r in table_rows(output) if re.fullmatch(r"[+-]\d\.\d\d", r[2])}


def test_the_readme_table_has_the_demos_header_and_every_planted_cell():
    output = readme_demo_output()
    assert output.strip(), "paste the table `auditkit demo` printed between the markers"
    header = next(line for line in output.splitlines() if line.startswith("edit"))
    assert header.split() == [c for c in TABLE_HEADER if c]
    expected = {(edit, trait, f"{value:+.2f}") for edit, trait, value in planted_cells(AUDIT_EDITS, CONTRASTS)}
    assert planted_rows(output) == expected
    for row in table_rows(output):  # every row has an edit, a trait and both runs' figures
        assert len(row) == 9 and all(row[i] for i in (0, 1, 3, 4, 5, 6, 7, 8)), row


def test_the_readme_demo_ran_within_five_minutes():
    found = re.search(r"^total time: (\d+) s$", readme_demo_output(), re.M)
    assert found, "the README's demo output ends with the total time the demo printed"
    assert int(found.group(1)) < 300
