"""`pca sim`: the pump on simulated hardware.

Until the interactive front panel exists, and whenever there is no terminal,
it replays the bundled demo scenario headless and prints its summary.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pca.app.scenario import load_scenario, run_scenario

DEMO = "postop_morphine.toml"


def main(args: Any) -> int:
    demo = resources.files("pca.examples").joinpath(DEMO)
    with resources.as_file(demo) as path:
        scenario = load_scenario(path)
    result = run_scenario(scenario)
    print(f"pca sim: replayed the demo scenario {DEMO!r} on simulated hardware "
          "(virtual time, temporary SQLite log)")
    print(json.dumps(result.summary, indent=2))
    return 0
