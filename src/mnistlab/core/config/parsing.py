"""One knob's value from what people and files give: --set text (`parse`), JSON or Python values (`coerce`),
each checked against the knob's declaration (`Knob`); a bad value is a `ConfigError` that says what is allowed."""

import difflib
import math

from mnistlab.core.errors import ConfigError


def parse(spec, raw: str):
    """A --set string for the knob SPEC as a value of its type (checked by `coerce`)."""
    key, text = spec.name, raw.strip()
    if spec.optional and text.lower() in ("none", "null", "") and text.lower() not in spec.aliases:
        return None
    base = spec.base_type
    try:
        if spec.is_pair or spec.is_list:
            items = [item for item in text.strip("[]()").replace("x", ",").split(",") if item.strip()]
            return tuple(int(item) for item in items)
        if base is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{key} must be {_kind(spec)}, got {shown_text(raw)}") from None
    return text


def shown_text(text, limit=40):
    """A user's text in an error message: whole when short, its start and length when not (a message is one line)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(text):,} characters)"


def _kind(spec):
    if spec.is_pair or spec.is_list:
        return "comma-separated integers, e.g. 256,256"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(spec.base_type, "a string")


def coerce(spec, value):
    """Bring a value given in Python, JSON or --set text to the knob's type, and check it against the declaration."""
    key, base = spec.name, spec.base_type
    if isinstance(value, str) and spec.choices:
        value = spec.canonical(value)
    if value is None:
        if spec.optional:
            return None
        raise ConfigError(f"{key} cannot be empty")
    if isinstance(value, str) and base is not str:
        value = parse(spec, value)
    if spec.is_pair or spec.is_list:
        return _coerce_integers(spec, value)
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float (JSON allows 10**400)
            raise ConfigError(f"{key} must be {spec.bounds_text()}, got a number too large") from None
        if not math.isfinite(value):  # NaN passes every bound check (it fails every comparison)
            raise ConfigError(f"{key} must be a finite number, got {value}")
    elif base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        if spec.choices and value not in spec.choices:
            close = difflib.get_close_matches(value, spec.choices, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{key} must be one of {', '.join(spec.choices)}, got {value!r}{hint}")
        return value
    if not spec.within_bounds(value):
        raise ConfigError(f"{key} must be {spec.bounds_text()}, got {_shown_number(value)}")
    return value


def _coerce_integers(spec, value):
    """A list of integers (hidden_units=256,256) or a pair (kernel_size=3 is 3x3), checked against the declaration."""
    key = spec.name
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{key} must be a list of integers, got {value!r}")
    value = tuple(value)
    if spec.is_pair:
        if len(value) == 1:
            value = value * 2  # a single number means a square
        if len(value) != 2:
            raise ConfigError(f"{key} takes one number or a pair, got {list(value)}")
        if not all(spec.within_bounds(v) for v in value):
            raise ConfigError(f"{key} entries must be {spec.bounds_text()}, got {list(value)}")
    elif len(value) < spec.min_items:
        raise ConfigError(f"{key} needs at least one positive width, got {list(value)}")
    elif spec.max_items is not None and len(value) > spec.max_items:
        raise ConfigError(f"{key} takes at most {spec.max_items} entries, got {len(value)}")
    elif not all(spec.within_bounds(v) for v in value):
        raise ConfigError(f"{key} entries must be {spec.bounds_text()}, got {_shown_list(value)}")
    return value


def _shown_number(value):
    """A number for an error message: a huge integer (10**30) shortened, not printed whole."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def _shown_list(values):
    shown = ", ".join(_shown_number(v) for v in values[:8])
    return f"[{shown}{', ...' if len(values) > 8 else ''}]"
