"""The state machine's diagram, drawn from the one transitions table (`make diagram`).

`python -m pca.controller.diagram > docs/state-machine.md` (`make diagram`) writes it;
tests/test_diagram.py fails when the checked-in file differs from what this prints, so the
picture never drifts from the table.
It uses transitions' GraphMachine with its mermaid engine (text only, no graphviz).
"""

from __future__ import annotations

import sys
from typing import Any

from transitions.extensions import GraphMachine

from pca.controller.pump import STATES, TRANSITIONS

TITLE = "PCA pump states"
GUARDS = {"has_high_alarm": "a high-priority alarm is active",
          "limit_reached": "the dose limit allows nothing more"}


def mermaid() -> str:
    """The table as a mermaid stateDiagram, guards shown as [condition] / [!condition]."""
    machine: Any = GraphMachine(states=STATES, transitions=TRANSITIONS, initial="unprogrammed",
                                auto_transitions=False, graph_engine="mermaid",
                                show_conditions=True, title=f"title: {TITLE}")
    source = str(machine.get_graph().draw(None))
    # Keep the structure; drop the styling, which would mark the initial state "active".
    lines = [line.rstrip() for line in source.splitlines()
             if not line.lstrip().startswith(("classDef ", "Class "))]
    return "\n".join(lines).rstrip() + "\n"


def markdown() -> str:
    guards = "\n".join(f"- `{name}`: {meaning}" for name, meaning in GUARDS.items())
    return (
        "# The pump's state machine\n\n"
        "Generated from `TRANSITIONS` in `pca/controller/pump.py` by "
        "`python -m pca.controller.diagram > docs/state-machine.md` (or `make diagram`); "
        "do not edit by hand: `tests/test_diagram.py` fails when this file and the table "
        "differ.\n\n"
        "Edges are labelled `trigger [guard]`; `[!guard]` means the transition is taken "
        "only when the guard is false. A trigger with two edges (`dose_done`) takes the "
        "first whose guard holds, in the table's order.\n\n"
        f"{guards}\n\n"
        "```mermaid\n" + mermaid() + "```\n"
    )


def main() -> int:
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
