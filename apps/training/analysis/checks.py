"""Input checks shared by the scaling and planning arithmetic.

Both modules take numbers from forms, APIs and parsed logs; a NaN, an infinity or a zero GPU count
would otherwise surface as a silent NaN cost or a ZeroDivisionError far from its cause. Each check
raises ValueError naming the argument, and returns the value as the type the arithmetic expects.
"""

from __future__ import annotations

import math


def positive(name: str, value: object) -> float:
    number = _finite(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return number


def non_negative(name: str, value: object) -> float:
    number = _finite(name, value)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def positive_int(name: str, value: object) -> int:
    # bool is an int subclass, but True GPUs is a caller's bug, not one GPU.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} is too large") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number
