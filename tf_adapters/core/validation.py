"""Up-front checks for config values, with messages that name the input."""

import dataclasses
import re


def check_int(name, value, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"`{name}` must be an int. Received: {name}={value!r} "
            f"(type {type(value).__name__})."
        )
    _check_range(name, value, minimum, maximum)
    return value


def check_float(name, value, minimum=None, maximum=None, strict_min=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a number. Received: {name}={value!r} "
            f"(type {type(value).__name__})."
        )
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value}.")
    if strict_min and minimum is not None and value <= minimum:
        raise ValueError(
            f"`{name}` must be > {minimum}. Received: {name}={value}."
        )
    _check_range(name, value, None if strict_min else minimum, maximum)
    return value


def _check_range(name, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise ValueError(
            f"`{name}` must be >= {minimum}. Received: {name}={value}."
        )
    if maximum is not None and value > maximum:
        raise ValueError(
            f"`{name}` must be <= {maximum}. Received: {name}={value}."
        )


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be true or false. Received: {name}={value!r}."
        )
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. "
            f"Received: {name}={value!r}."
        )
    return value


def check_patterns(name, value, allow_none=True):
    """Checks a list of layer-path patterns; returns it as a list or None."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, str) and v for v in value
    ):
        raise TypeError(
            f"`{name}` must be a list of non-empty strings (layer names or "
            "regular expressions over layer paths). "
            f"Received: {name}={value!r}."
        )
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"`{name}` holds an invalid regular expression {pattern!r}: "
                f"{e}."
            ) from None
    return list(value)


def check_pattern_map(name, value, check_value):
    """Checks a `{layer pattern: value}` dict (PEFT's `rank_pattern`);
    returns it as a plain dict or `None`."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise TypeError(
            f"`{name}` must be a dict of layer pattern to value. "
            f"Received: {name}={value!r}."
        )
    check_patterns(name, list(value), allow_none=False)
    return {k: check_value(f"{name}[{k!r}]", v) for k, v in value.items()}


def check_weight_arrays(source, arrays):
    """Refuses an adapter weight that is not floating point or not finite,
    naming the file `source` and the weight."""
    import numpy as np

    for key, array in arrays.items():
        if array.dtype.kind != "f":
            raise ValueError(
                f"{source}: weight {key!r} has dtype {array.dtype}; adapter "
                "weights are floating point."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{source}: weight {key!r} holds NaN or Inf.")


def check_adapter_name(name):
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(
            "`name` must be a non-empty string of letters, digits, '_', '-' "
            f"or '.'. Received: name={name!r}."
        )
    return name


def base_type(annotation):
    """`int` for `int | None`; any other annotation as it is.

    >>> base_type(int | None), base_type(str)
    (<class 'int'>, <class 'str'>)
    """
    args = getattr(annotation, "__args__", ())
    args = [a for a in args if a is not type(None)]
    return args[0] if args else annotation


def check_field_types(obj):
    """Checks each field of a dataclass against its annotation.

    Handles `str`, `int`, `float` (an int is accepted and converted),
    `bool`, `list` (of strings) and `X | None`. Raises `TypeError` naming
    the field.
    """
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        kind = base_type(field.type)
        if kind is not field.type and value is None:  # `X | None`
            continue
        if (
            kind is float
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            value = float(value)
            setattr(obj, field.name, value)
        ok = isinstance(value, kind) and not (
            kind in (int, float) and isinstance(value, bool)
        )
        if ok and kind is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            expected = "a list of strings" if kind is list else kind.__name__
            raise TypeError(
                f"`{field.name}` must be {expected}. Received: "
                f"{field.name}={value!r}."
            )


def build_dataclass(cls, data, source):
    """`cls(**data)`, rejecting keys that are not fields of `cls`."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"{source}: unknown option(s) {unknown}. Valid options: "
            f"{sorted(known)}."
        )
    return cls(**data)
