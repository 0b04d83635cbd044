"""The clinician front panel (20x4 LCD, keypad): widgets, menus as data, one flow per task."""

from pca.controller.panel.frontpanel import FrontPanel
from pca.controller.panel.host import PanelHost, PanelView, PinStatus, RxReview, highest_first

__all__ = ["FrontPanel", "PanelHost", "PanelView", "PinStatus", "RxReview", "highest_first"]
