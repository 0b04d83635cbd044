"""Pure therapy domain: drug library, prescriptions and the dose ledger.

Nothing here does I/O, starts a thread or reads a clock: time is an argument.
"""
