"""pca: controller of an ambulatory patient-controlled analgesia pump."""

__version__ = "0.1.0"
