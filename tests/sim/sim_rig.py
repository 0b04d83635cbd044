"""Helpers for the simulator tests: the Textual app over a SimWorld on a temporary log, driven
key by key with virtual time moved explicitly (a plain module with a unique name)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from pca.app.sim_tui import PumpSimApp
from pca.app.sim_world import DEMO_PIN, SimWorld
from pca.controller.ports import NS_PER_S
from pca.store.eventlog import export_rows

START_WALL_NS = 1_770_000_000 * NS_PER_S
SIZE = (100, 32)

Body = Callable[["SimPilot"], Awaitable[None]]


class SimPilot:
    """The app, its world and Textual's pilot; every helper lets virtual time run on so the
    keys reach the pump through the mock pins, the debouncers and the 50 ms tick."""

    def __init__(self, app: PumpSimApp, pilot: Pilot[int]) -> None:
        self.app = app
        self.pilot = pilot
        self.world = app.world

    async def press(self, *keys: str, then_s: float = 1.0) -> None:
        await self.pilot.press(*keys)
        self.app.advance_s(then_s)
        await self.pilot.pause()

    async def keypad(self, text: str, then_s: float = 1.0) -> None:
        names = {"*": "asterisk", "#": "number_sign"}
        await self.press(*[names.get(k, k) for k in text], then_s=then_s)

    async def wait(self, seconds: float) -> None:
        self.app.advance_s(seconds)
        await self.pilot.pause()

    def widget(self, name: str) -> str:
        """The text a widget shows now."""
        return str(self.app.query_one(f"#{name}", Static).content)

    @property
    def screen(self) -> str:
        """The pump's 20x4 display as the app shows it."""
        return self.widget("display")

    def events(self, kind: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """The pump's event log (the SQLite file), optionally filtered."""
        return [e for e in export_rows(self.world.db)
                if (kind is None or e["type"] == kind)
                and all(e.get(k) == v for k, v in match.items())]

    async def program_and_start(self) -> None:
        """The demo prescription by the simulator shortcut, then Start on the keypad."""
        await self.press("p")
        assert self.world.pump.state == "stopped", self.screen
        await self.keypad(DEMO_PIN + "#")
        await self.keypad("1")
        assert "START DELIVERY?" in self.screen, self.screen
        await self.keypad("#")
        assert self.world.pump.state == "running", self.screen
        await self.wait(5)  # the "Delivery started" message times out to the menu ...
        await self.keypad("*")  # ... where * locks the keypad: the home screen again
        assert "RUNNING" in self.screen, self.screen


def run_sim(db: Path, body: Body, *, size: tuple[int, int] = SIZE) -> None:
    """Run `body` against the app on `db`, with no wall-clock timer (time moves only when
    the test says), then close the world as `pca sim` does on quit."""
    world = SimWorld(db, start_wall_ns=START_WALL_NS)

    async def main() -> None:
        app = PumpSimApp(world, realtime=False)
        async with app.run_test(size=size) as pilot:
            await body(SimPilot(app, pilot))

    try:
        asyncio.run(main())
    finally:
        world.close()
