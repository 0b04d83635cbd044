"""docs/state-machine.md is what `python -m pca.controller.diagram` draws from the table now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pca.controller import diagram
from pca.controller.pump import TRANSITIONS

DOC = Path(__file__).resolve().parents[1] / "docs" / "state-machine.md"


def test_the_checked_in_diagram_is_current() -> None:
    assert DOC.read_text() == diagram.markdown(), \
        "docs/state-machine.md is stale: run `make diagram` and commit it"


def test_every_transition_of_the_table_is_an_edge() -> None:
    text = diagram.mermaid()
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            assert any(line.strip().startswith(f"{source} --> {row['dest']}: ")
                       and row["trigger"] in line for line in text.splitlines()), row


def test_a_changed_table_changes_the_diagram(monkeypatch: Any) -> None:
    before = diagram.markdown()
    extra = {"trigger": "panic", "source": "alarm", "dest": "unprogrammed"}
    monkeypatch.setattr(diagram, "TRANSITIONS", [*TRANSITIONS, extra])
    after = diagram.markdown()
    assert after != before and "alarm --> unprogrammed: panic" in after
