"""Programming: view the active Rx; review, override, activate a pharmacy file (SR-8, SR-6)."""

from __future__ import annotations

from collections.abc import Callable

from pca.controller.auth import SecretPin
from pca.controller.inputs import ClinicianCommand, PendingPrescription
from pca.controller.panel import text as T
from pca.controller.panel.host import RxReview
from pca.controller.panel.nav import Flow
from pca.controller.panel.rxview import rx_pages
from pca.controller.panel.widgets import (
    WIDTH,
    Action,
    Confirm,
    Pages,
    PinEntry,
    fit,
    num,
    paginate,
    wrap,
)


class ProgramFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"view_rx": self.view_rx, "review_rx": self.review_rx}

    def view_rx(self) -> None:
        nav = self.nav
        view = self.host.panel_view()
        if view.rx is None:
            nav.say(*T.RX_NONE_ACTIVE)
            return
        extra = [T.RX_OVERRIDES_HEAD, *[w for o in view.rx.overrides for w in wrap(o)]] \
            if view.rx.overrides else []
        extra += [T.RX_LIBRARY.format(version=view.library.version)[:WIDTH]]
        nav.show(Pages(rx_pages(view.rx, T.RX_ACTIVE_TITLE, extra), back=nav.main_menu))

    def review_rx(self) -> None:
        nav = self.nav
        item = nav.rx_pending
        if item is None:
            nav.say(*T.RX_NO_FILE)
            return
        review = self.host.review_prescription(item)
        title = T.RX_NEW_TITLE.format(rx_id=item.rx_id).strip()

        def reject() -> None:
            self.host.dismiss_prescription(item, "rejected on the keypad")
            if nav.rx_pending is item:
                nav.rx_pending = None
            nav.say(*T.RX_REJECTED)

        rx = review.prescription
        file_name = item.source.rsplit("/", 1)[-1]
        if rx is None:
            lines = [T.RX_REFUSED, *wrap(file_name), *[w for e in review.errors for w in wrap(e)]]
            nav.show(Pages(paginate(lines), back=reject, enter=reject, enter_label=T.DISMISS_KEY,
                           back_label=T.DISMISS_KEY))
            return
        pages = rx_pages(rx, title, [T.RX_FILE.format(name=file_name)[:WIDTH]])

        def after_review() -> None:
            if review.soft:
                self._override(review, item, reject)
            else:
                self._activate(review, item, confirm_soft=False)

        drug = T.DRUG_AND_CONCENTRATION.format(drug=rx.request.drug,
                                           conc=num(rx.request.concentration_per_ml),
                                           unit=rx.drug_unit)
        pages.append([T.RX_ACTIVATE, fit(drug), T.RX_ACTIVATE_PIN])

        def confirm_reject() -> None:
            title, name, note = T.RX_REJECT
            nav.show(Confirm([title, name.format(name=file_name), note], yes=reject,
                             back=self.review_rx, yes_label=T.REJECT_KEY))

        nav.show(Pages(pages, back=nav.main_menu, enter=after_review, enter_label=T.YES_KEY,
                       back_label=T.LATER_KEY, digits={"0": confirm_reject},
                       digit_hint=T.REJECT_HINT))

    def _override(self, review: RxReview, item: PendingPrescription, reject: Action) -> None:
        lines = [T.RX_SOFT_HEAD.format(n=len(review.soft))]
        for breach in review.soft:
            lines += wrap(breach)
        pages = paginate(lines)
        pages.append(list(T.RX_OVERRIDE))
        self.nav.show(Pages(pages, back=reject, enter=lambda: self._activate(
            review, item, confirm_soft=True), enter_label=T.OVERRIDE_KEY, back_label=T.NO_KEY))

    def _activate(self, review: RxReview, item: PendingPrescription, *,
                  confirm_soft: bool) -> None:
        nav = self.nav

        def with_pin(pin: SecretPin) -> None:
            events = nav.submit(ClinicianCommand("program", pin, {
                "prescription": review.request, "confirm_soft": confirm_soft}))
            if any(t == "prescription_activated" for t, _ in events):
                if nav.rx_pending is item:
                    nav.rx_pending = None
                nav.say(*T.RX_ACTIVATED)
            elif any(t == "auth" and f.get("outcome") == "failed" for t, f in events):
                nav.say(*T.RX_WRONG_PIN)
            else:
                nav.report(events, "")

        nav.show(PinEntry(T.RX_PIN_TITLE, with_pin, nav.main_menu))
