"""The clinician and admin menus as data: digit, label, role needed, action.

As Klipper's display/menu.cfg declares its LCD menu; FrontPanel turns them into screens
and checks at start-up that every action and condition named here exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from pca.controller.auth import Role
from pca.controller.panel import text as T


@dataclass(frozen=True)
class Entry:
    """One menu item. `label` and `alt_label` are keys of text.LABEL; `action` a flow action;
    `alt_when` names a condition (FrontPanel.conditions) under which `alt_label` shows."""

    digit: str
    label: str
    action: str
    role: Role = "clinician"
    alt_label: str = ""
    alt_when: str = ""


@dataclass(frozen=True)
class MenuSpec:
    title: str
    items: tuple[Entry, ...]


MAIN = MenuSpec(T.MENU_TITLE, (
    Entry("1", "start", "start_stop", alt_label="stop", alt_when="delivering"),
    Entry("2", "bolus", "clinician_bolus"),
    Entry("3", "loading", "loading_dose"),
    Entry("4", "view_rx", "view_rx"),
    Entry("5", "history", "history"),
    Entry("6", "alarms", "alarms"),
    Entry("7", "syringe", "new_syringe"),
    Entry("8", "new_patient", "new_patient"),
    Entry("9", "change_pin", "change_pin"),
    Entry("0", "new_rx", "review_rx", alt_label="new_rx_waiting", alt_when="rx_waiting"),
))

ADMIN = MenuSpec(T.ADMIN_TITLE, (
    Entry("1", "reset_clinician_pin", "reset_clinician_pin", role="admin"),
    Entry("2", "admin_pin", "change_pin", role="admin"),
    Entry("3", "library", "library", role="admin"),
))

# The menu a session opens on, by the role that unlocked it.
MENUS: dict[Role, MenuSpec] = {"clinician": MAIN, "admin": ADMIN}
