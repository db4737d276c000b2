"""The package's integer argument check: sizes, counts, steps and seeds all go through it."""
import math
import numbers


class NotAnInteger(TypeError, ValueError):
    """An argument that should be an integer and is not (a string, a boolean, 2.7).

    Both a TypeError and a ValueError: the data sets refused such values with the first and the
    models with the second, and callers of either catch what they caught before."""


def check_int(name, value, minimum=None, maximum=None) -> int:
    """`value` as a Python int in [minimum, maximum] (either bound may be None).

    Integers of any kind pass, numpy's included, and so does a float that holds an integer (10.0,
    as a JSON or YAML file may give it); booleans, fractions (2.7), NaN and non-numbers raise
    `NotAnInteger`; an integer out of range raises ValueError. Both messages name the argument.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            not isinstance(value, numbers.Integral)
            and not (math.isfinite(value) and value == int(value))):
        raise NotAnInteger(f"{name} must be {_requirement(minimum, maximum)}, got {value!r}.")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {_requirement(minimum, maximum)}, got {value!r}.")
    return number


def _requirement(minimum, maximum):
    if maximum is not None:
        return f"an integer in [{'-∞' if minimum is None else minimum}, {maximum}]"
    if minimum == 1:
        return "a positive integer"
    return "an integer" if minimum is None else f"an integer ≥ {minimum}"
