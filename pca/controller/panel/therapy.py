"""Start and stop delivery, the clinician bolus and the loading dose, each confirmed."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from pca.controller.inputs import ClinicianCommand, PanelCommand
from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow
from pca.controller.panel.rxview import amount_pair
from pca.controller.panel.widgets import Confirm, NumberEntry, fit, num
from pca.therapy.prescription import Prescription
from pca.therapy.units import show


class TherapyFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"start_stop": self.start_stop, "clinician_bolus": self.clinician_bolus,
                "loading_dose": self.loading_dose}

    def start_stop(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        if view.state == "stopped":
            rx = view.rx
            assert rx is not None
            basal = T.START_BASAL.format(ml_h=num(rx.basal_ml_h, 2))
            drug = T.DRUG_AND_CONCENTRATION.format(drug=rx.request.drug,
                                               conc=num(rx.request.concentration_per_ml),
                                               unit=rx.drug_unit)
            nav.show(Confirm([T.START_TITLE, drug, basal], yes=self._start,
                             back=nav.main_menu, yes_label=T.START_KEY))
        elif view.state == "unprogrammed":
            nav.say(*T.START_NO_RX)
        elif view.state == "alarm":
            nav.say(*T.START_ALARM)
        else:
            rate = T.STOP_RATE.format(ml_h=num(view.rate_ml_h, 2))
            nav.show(Confirm([*T.STOP_LINES, rate], yes=self._stop, back=nav.main_menu,
                             yes_label=T.STOP_KEY))

    def _start(self) -> None:
        self.nav.report(self.nav.submit(PanelCommand("start")), T.STARTED)

    def _stop(self) -> None:
        self.nav.report(self.nav.submit(PanelCommand("stop")), T.STOPPED)

    def clinician_bolus(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        rx = view.rx
        if rx is None or view.state not in ("running", "kvo"):
            nav.say(*T.BOLUS_NOT_RUNNING)
            return
        cap = rx.request.clinician_bolus_max
        unit = T.UNIT_ML if rx.request.dose_unit == "ml" else rx.request.dose_unit
        if cap <= 0:
            nav.say(*T.BOLUS_NONE_ALLOWED)
            return
        entry = NumberEntry(T.BOLUS_TITLE, unit, places=2, back=nav.main_menu,
                            hint=T.BOLUS_MAX.format(cap=show(cap), unit=unit),
                            on_enter=lambda v: None)

        def entered(amount: Fraction) -> None:
            if amount > cap:
                entry.refuse(T.BOLUS_ABOVE_MAX.format(cap=show(cap), unit=unit))
                return
            self._confirm_bolus(rx, amount)

        entry.on_enter = entered
        nav.show(entry)

    def _confirm_bolus(self, rx: Prescription, amount: Fraction) -> None:
        nav = self.nav
        ml = rx.to_ml(amount)
        given, volume = amount_pair(rx, amount, ml)
        lines = [T.BOLUS_CONFIRM, fit(T.AMOUNT_BOTH.format(amount=given, unit=rx.drug_unit,
                                                           ml=volume)),
                 fit(T.DRUG_CONCENTRATION.format(drug=rx.request.drug,
                                                 conc=num(rx.request.concentration_per_ml),
                                                 unit=rx.drug_unit))]

        def give() -> None:
            events = nav.submit(ClinicianCommand("clinician_bolus", None, {"amount": amount}))
            nav.report(events, T.BOLUS_STARTED)

        nav.show(Confirm(lines, yes=give, back=nav.main_menu, yes_label=T.GIVE_KEY))

    def loading_dose(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        rx = view.rx
        if rx is None or view.state not in ("running", "kvo"):
            nav.say(*T.LOADING_NOT_RUNNING)
            return
        if rx.loading_dose_ml <= 0:
            nav.say(*T.LOADING_NONE)
            return
        given, volume = amount_pair(rx, rx.request.loading_dose, rx.loading_dose_ml)
        lines = [T.LOADING_CONFIRM, fit(T.AMOUNT_BOTH.format(amount=given, unit=rx.drug_unit,
                                                             ml=volume)),
                 fit(rx.request.drug)]

        def give() -> None:
            nav.report(nav.submit(ClinicianCommand("loading_dose")), T.LOADING_STARTED)

        nav.show(Confirm(lines, yes=give, back=nav.main_menu, yes_label=T.GIVE_KEY))
