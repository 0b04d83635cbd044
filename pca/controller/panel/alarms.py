"""Alarms on the keypad: one page per active alarm with what to do; silence and clear."""

from __future__ import annotations

from collections.abc import Callable

from pca.controller.alarms import PRIORITY
from pca.controller.inputs import ClinicianCommand, PanelCommand
from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow
from pca.controller.panel.widgets import Action, Confirm, Screen, fit, wrap


class AlarmsFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"alarms": lambda: self.nav.show(AlarmsScreen(self)),
                "clear_alarms": self.clear_alarms, "silence": self.silence}

    def silence(self, then: Action | None = None) -> None:
        """Silence from the locked home screen needs no PIN (SR-11: sound only, 2 min)."""
        nav = self.nav
        if not self.host.panel_view().alarms:
            if then is not None:
                nav.say(T.NO_ALARM_TO_SILENCE, then=then)
            return
        nav.submit(PanelCommand("silence"))
        nav.say(*T.SILENCED, then=then)

    def clear_alarms(self) -> None:
        """Clearing needs its confirmation: the pump clears those whose cause has gone."""
        nav = self.nav
        alarms = self.host.panel_view().alarms
        if not alarms:
            nav.say(T.NO_ALARM_TO_CLEAR)
            return
        names = ", ".join(name.upper().replace("_", " ") for name in alarms)

        def clear() -> None:
            nav.report(nav.submit(ClinicianCommand("clear_alarm")), T.CLEARED)

        nav.show(Confirm([T.CLEAR_CONFIRM, names, T.CLEAR_WHICH], yes=clear,
                         back=nav.main_menu, yes_label=T.CLEAR_KEY))


class AlarmsScreen(Screen):
    """Active alarms, one per page with what to do; 1 silences, 2 clears (with PIN session)."""

    guarded = True

    def __init__(self, flow: AlarmsFlow) -> None:
        self.flow = flow
        self.page = 0

    def takes(self, key: str) -> bool:
        return key in ("1", "2")

    def render(self, now_ns: int) -> list[str]:
        alarms = self.flow.host.panel_view().alarms
        if not alarms:
            return list(T.ALARMS_NONE)
        self.page %= len(alarms)
        name = alarms[self.page]
        prio = PRIORITY.get(name, "low").upper()
        head = fit(T.ALARMS_HEAD.format(n=self.page + 1, of=len(alarms),
                                        name=name.upper().replace("_", " ")))
        text = wrap(T.ALARM_PRIORITY.format(priority=prio,
                                            help=T.ALARM_HELP.get(name, T.ALARM_HELP_UNKNOWN)))
        return [head, *[fit(t) for t in text[:2]], fit(T.ALARMS_FOOT)]

    def key(self, key: str) -> None:
        nav = self.flow.nav
        if key == "*":
            nav.main_menu()
        elif key == "#":
            self.page += 1
        elif key == "1":
            self.flow.silence(then=nav.main_menu)
        elif key == "2":
            self.flow.clear_alarms()
