"""Wiring and the command line: pca run, sim, scenario, log, bench."""
