"""Exact numbers for doses: clinician decimals become Fractions, never binary floats."""

from __future__ import annotations

from fractions import Fraction

DOSE_UNITS = ("mg", "mcg", "ml")
DRUG_UNITS = ("mg", "mcg")


def exact(value: object, *, where: str) -> Fraction:
    """The exact decimal a clinician typed (0.2 is 1/5, not 0.2000000000000000111).

    Raises ValueError naming `where` for anything that is not a finite number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise ValueError(f"{where}: {value!r} is not a number")
    try:
        result = Fraction(value) if isinstance(value, Fraction) else Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{where}: {value!r} is not a number") from None
    return result


def show(value: Fraction) -> str:
    """A Fraction as a short decimal for messages (exact where it terminates)."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    if text in ("0", "-0") and value != 0:
        return f"{float(value):.3g}"  # never show a tiny non-zero amount as 0
    return text
