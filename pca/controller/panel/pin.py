"""PIN changes on the keypad: the session's own PIN, and an admin's reset of a clinician's.

The own PIN needs the current one first; each new PIN is typed twice (SR-6).
"""

from __future__ import annotations

from collections.abc import Callable

from pca.controller.auth import PIN_MAX_DIGITS, PIN_MIN_DIGITS, Role, SecretPin
from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow
from pca.controller.panel.widgets import Pages, PinEntry, paginate, wrap


class PinFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"change_pin": self.change_pin, "reset_clinician_pin": self.reset_clinician_pin}

    def change_pin(self) -> None:
        nav = self.nav
        own: Role = self.host.session_role
        back = nav.main_menu

        def got_old(old: SecretPin) -> None:
            def got_new(new: SecretPin) -> None:
                def got_again(again: SecretPin) -> None:
                    if again != new:
                        nav.say(*T.PINS_DIFFER, then=back)
                        return
                    error = self.host.change_pin(old, new)
                    if error is None:
                        nav.say(*[line.format(role=T.ROLE_NAME[own]) for line in T.PIN_CHANGED],
                                then=back)
                    else:
                        nav.show(Pages(paginate([T.PIN_NOT_CHANGED, *wrap(error)]), back=back))

                nav.show(PinEntry(T.PIN_REPEAT, got_again, back))

            nav.show(PinEntry(T.PIN_NEW.format(low=PIN_MIN_DIGITS, high=PIN_MAX_DIGITS),
                              got_new, back))

        nav.show(PinEntry(T.PIN_CURRENT, got_old, back))

    def reset_clinician_pin(self) -> None:
        nav = self.nav
        back = nav.admin_menu

        def got_new(new: SecretPin) -> None:
            def got_again(again: SecretPin) -> None:
                if again != new:
                    nav.say(*T.PINS_DIFFER, then=back)
                    return
                error = self.host.reset_pin("clinician", new)
                if error is None:
                    nav.say(T.CLIN_PIN_SET, then=back)
                else:
                    nav.show(Pages(paginate([T.PIN_NOT_SET, *wrap(error)]), back=back))

            nav.show(PinEntry(T.CLIN_PIN_REPEAT, got_again, back))

        nav.show(PinEntry(T.CLIN_PIN_NEW, got_new, back))
