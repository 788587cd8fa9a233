"""PEFT's rule for matching layer paths with patterns; no Keras, so that
configs (and the CLI's parser) can use it without loading TensorFlow."""

import re


def matches(pattern, path):
    """PEFT's rule: a regex full match of the path, or a name suffix."""
    return (
        path == pattern
        or path.endswith("/" + pattern)
        or re.fullmatch(pattern, path) is not None
    )


def first_match(pattern_map, path, default):
    """The value of the first key of `pattern_map` that `matches` `path`,
    else `default` (PEFT's `rank_pattern` rule)."""
    for pattern, value in (pattern_map or {}).items():
        if matches(pattern, path):
            return value
    return default
