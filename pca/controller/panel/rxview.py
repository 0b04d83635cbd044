"""A prescription as screen pages: every value in the drug unit and in mL side by side (SR-8)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from pca.controller.panel import text as T
from pca.controller.panel.widgets import fit, num, paginate, row
from pca.therapy.prescription import Prescription


def amount_pair(rx: Prescription, amount: Fraction, ml: Fraction) -> tuple[str, str]:
    """(amount in the drug unit, in mL) for display."""
    in_unit = ml * rx.request.concentration_per_ml
    return num(in_unit), num(ml)


def rx_pages(rx: Prescription, title: str, extra: Sequence[str] = ()) -> list[list[str]]:
    """The prescription as pages of three lines: drug unit and mL side by side."""
    req = rx.request
    unit = rx.drug_unit
    header = row("", unit, T.UNIT_ML)

    def pair(label: str, amount: Fraction, ml: Fraction) -> str:
        a, b = amount_pair(rx, amount, ml)
        return row(label, a, b)

    limit = pair(T.RX_LIMIT.format(window_h=req.dose_limit_window_h),
                 req.dose_limit or Fraction(0), rx.dose_limit_ml) \
        if rx.dose_limit_ml is not None else T.RX_NO_LIMIT
    max_pca = T.RX_MAX_PCA.format(n=T.RX_MAX_PCA_NONE if req.max_pca_per_h is None
                                  else str(req.max_pca_per_h))
    entered = T.UNIT_ML if req.dose_unit == "ml" else req.dose_unit
    concentration = T.RX_CONCENTRATION.format(conc=num(req.concentration_per_ml), unit=unit)
    if req.route != "iv":
        concentration += " " + T.ROUTE_SHORT.get(req.route, req.route.upper())
    pages = [
        [fit(title), fit(req.drug), fit(concentration)],
        [header, pair(T.RX_PCA_DOSE, req.pca_dose, rx.pca_dose_ml),
         pair(T.RX_BASAL, req.basal_rate_per_h, rx.basal_ml_h)],
        [header, limit, pair(T.RX_LOADING, req.loading_dose, rx.loading_dose_ml)],
        [header, pair(T.RX_CLIN_MAX, req.clinician_bolus_max, rx.clinician_bolus_max_ml),
         fit(T.RX_LOCKOUT.format(min=num(req.lockout_min)))],
        [fit(max_pca), fit(T.RX_ENTERED_IN.format(unit=entered)),
         fit(T.RX_OVERRIDES.format(n=len(rx.overrides)) if rx.overrides
             else T.RX_NO_OVERRIDES)],
    ]
    if req.has_pib:  # SR-12: the programmed intermittent bolus, on a page of its own
        pib = [[header, pair(T.RX_PIB_DOSE, req.pib_dose, rx.pib_dose_ml),
                fit(T.RX_PIB_EVERY.format(every=req.pib_interval_min, first=req.first_min))]]
        if req.pib_reset_on_pca:
            pib.append([fit(T.RX_PIB_RESET)])
        pages[4:4] = pib
    monitor = req.monitor
    if monitor is not None:  # SR-13: what the breathing monitor watches
        limits = [T.RX_MONITOR_LIMIT[name].format(value=value)
                  for name, value in monitor.limits().items()]
        lines = [T.RX_MONITOR_TITLE.format(
            kind=T.RX_MONITOR_REQUIRED if monitor.required else T.RX_MONITOR_OPTIONAL),
            *limits, T.RX_MONITOR_TIMES.format(delay=monitor.delay_s, stale=monitor.stale_s)]
        pages += paginate([fit(line) for line in lines])
    pages += paginate(list(extra))
    return pages
