"""A new syringe (its volume, confirmed) and a new patient (clears Rx, history, limits)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from pca.controller.inputs import ClinicianCommand
from pca.controller.panel import text as T
from pca.controller.panel.nav import DELIVERING, Flow
from pca.controller.panel.widgets import Confirm, NumberEntry, num

SYRINGE_MAX_ML = 100


class SyringeFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"new_syringe": self.new_syringe, "new_patient": self.new_patient}

    def new_syringe(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        if view.state in DELIVERING:
            nav.say(*T.SYRINGE_STOP_FIRST)
            return

        def entered(volume: Fraction) -> None:
            if not 0 < volume <= SYRINGE_MAX_ML:
                entry.refuse(T.SYRINGE_RANGE.format(max_ml=SYRINGE_MAX_ML))
                return

            def load() -> None:
                events = nav.submit(ClinicianCommand("new_syringe", None,
                                                     {"syringe_ml": volume}))
                nav.report(events, T.SYRINGE_LOADED.format(ml=num(volume, 1)))

            nav.show(Confirm([T.SYRINGE_CONFIRM, T.SYRINGE_VOLUME.format(ml=num(volume, 1)),
                              T.SYRINGE_RESETS], yes=load, back=nav.main_menu,
                             yes_label=T.LOAD_KEY))

        entry = NumberEntry(T.SYRINGE_TITLE, T.UNIT_ML, places=1, back=nav.main_menu,
                            hint=T.SYRINGE_MAX.format(max_ml=SYRINGE_MAX_ML), max_digits=4,
                            on_enter=entered)
        nav.show(entry)

    def new_patient(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        if view.state not in ("unprogrammed", "stopped"):
            nav.say(*T.PATIENT_STOP_FIRST)
            return

        def confirmed() -> None:
            nav.rx_pending = None  # a file prepared before this point is not for them
            nav.report(nav.submit(ClinicianCommand("new_patient")), T.PATIENT_DONE)

        nav.show(Confirm(T.PATIENT_CONFIRM, yes=confirmed, back=nav.main_menu,
                         yes_label=T.YES_KEY))
