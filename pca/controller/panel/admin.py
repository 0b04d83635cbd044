"""The admin's drug-library screen: the library in force; install a new sealed one (SR-8)."""

from __future__ import annotations

from collections.abc import Callable

from pca.controller.auth import SecretPin
from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow
from pca.controller.panel.widgets import WIDTH, Pages, PinEntry, fit, paginate, wrap


class LibraryFlow(Flow):
    def actions(self) -> dict[str, Callable[[], None]]:
        return {"library": self.library_screen}

    def library_screen(self) -> None:
        nav = self.nav
        current = self.host.panel_view().library
        item = nav.library_pending
        pages = [[T.LIB_TITLE, fit(T.LIB_VERSION.format(version=current.version)),
                  fit(current.checksum[:WIDTH] or T.LIB_NO_CHECKSUM)],
                 paginate(wrap(", ".join(sorted(current.drugs))))[0]]
        if item is None:
            pages.append(list(T.LIB_NONE_WAITING))
            nav.show(Pages(pages, back=nav.admin_menu))
            return
        checked = self.host.review_library(item)

        def drop() -> None:
            if nav.library_pending is item:
                nav.library_pending = None
            nav.say(*T.LIB_DISMISSED, then=nav.admin_menu)

        if isinstance(checked, str):
            lines = [T.LIB_REFUSED, *wrap(checked), T.LIB_CURRENT_STAYS]
            nav.show(Pages(paginate(lines), back=drop, enter=drop, enter_label=T.DISMISS_KEY,
                           back_label=T.DISMISS_KEY))
            return
        new_pages = [[T.LIB_NEW, fit(T.LIB_VERSION.format(version=checked.version)),
                      T.LIB_CHECKSUM_OK],
                     *paginate(wrap(", ".join(sorted(checked.drugs)))),
                     [T.LIB_INSTALL, fit(T.LIB_REPLACES.format(version=current.version)),
                      T.LIB_THEN_PIN]]

        def with_pin(pin: SecretPin) -> None:
            error = self.host.install_library(item, pin)
            if error is None:
                if nav.library_pending is item:
                    nav.library_pending = None
                nav.say(T.LIB_INSTALLED, fit(T.LIB_VERSION.format(version=checked.version)),
                        then=nav.admin_menu)
            else:
                nav.show(Pages(paginate([T.LIB_NOT_INSTALLED, *wrap(error)]),
                               back=nav.admin_menu))

        nav.show(Pages(new_pages, back=drop, enter=lambda: nav.show(PinEntry(
            T.LIB_PIN_TITLE, with_pin, nav.admin_menu)), enter_label=T.INSTALL_KEY,
            back_label=T.NO_KEY))
