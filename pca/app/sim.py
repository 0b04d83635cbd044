"""`pca sim`: the pump on simulated hardware, on screen; headless demo without a terminal.

In a terminal it opens the Textual front panel (pca.app.sim_tui) over the real
controller on mock pins in virtual time, logging to a local SQLite file
(./pca-sim.db unless `--db` names another). Without a terminal (CI, a pipe) or
with `--headless`, it replays the bundled demo scenario and prints its summary.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pca.app.scenario import load_scenario, run_scenario

DEMO = "postop_morphine.toml"
DATABASE = Path("pca-sim.db")  # the same file as `pca run --sim`


def main(args: Any) -> int:
    db_arg = getattr(args, "db", None)
    if getattr(args, "headless", False) or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return headless(Path(db_arg) if db_arg else None)
    try:
        from pca.app.sim_tui import PumpSimApp
    except ImportError as err:  # textual missing: still show something useful
        print(f"pca sim: the front panel needs textual ({err}); pip install textual. "
              "Replaying the demo scenario instead.", file=sys.stderr)
        return headless(Path(db_arg) if db_arg else None)
    from pca.app.sim_world import SimWorld
    from pca.store.eventlog import LogOpenError

    db = Path(getattr(args, "db", None) or DATABASE)
    try:
        world = SimWorld(db)
    except LogOpenError as err:
        print(f"pca sim: {err}; choose another file with --db", file=sys.stderr)
        return 2
    try:
        PumpSimApp(world, speed=int(getattr(args, "speed", None) or 1)).run()
    finally:
        world.close()
    print(f"pca sim: event log in {db} (pca log tail --db {db})")
    return 0


def headless(db: Path | None = None) -> int:
    """The demo scenario into `db` (a new log; refused if the file exists) or a temporary one."""
    from pca.app.errors import CliError
    from pca.app.scenario import ScenarioError

    demo = resources.files("pca.examples").joinpath(DEMO)
    with resources.as_file(demo) as path:
        scenario = load_scenario(path)
    try:
        result = run_scenario(scenario, db=db)
    except ScenarioError as err:
        raise CliError(str(err)) from None
    where = "temporary SQLite log" if db is None else f"event log in {db}"
    print(f"pca sim: replayed the demo scenario {DEMO!r} on simulated hardware "
          f"(virtual time, {where})")
    print(json.dumps(result.summary, indent=2))
    return 0
