"""A small seeded mutator: damaged variants of a real file's bytes.

`Mutator(seed)` draws from its own `random.Random`, so a case is
reproduced by its reader, seed and index. Byte mutations model damage
(truncation, bit flips, overwritten, inserted, deleted or repeated spans,
boundary integers written over a field); `json_value` makes structural
changes to a parsed JSON value (a field of another type, a removed,
renamed or repeated key, a huge number); `duplicate_key_json` writes an
object with one key twice. Nothing here imports tf_adapters.

Example:
>>> m = Mutator(0)
>>> data = bytes(range(64))
>>> len({m.bytes(data) for _ in range(20)}) > 15
True
>>> m.json_text({"a": 1, "b": [1, 2]}) != '{"a": 1, "b": [1, 2]}'
True
"""

import json
import random

# Integers that sit on the boundaries readers get wrong.
INTERESTING = [
    0,
    1,
    2,
    7,
    8,
    255,
    2**15,
    2**16 - 1,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    10**12,
    2**62,
    2**63 - 1,
    2**63,
    2**64 - 1,
]
# JSON values to put where another value was.
JSON_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    10**12,
    2**64,
    -(10**18),
    1e308,
    -0.5,
    0.5,
    "",
    "x",
    "none",
    "LORA",
    "lora",
    "[",
    "a" * 300,
    "\u00e9\u2603",
    [],
    [None],
    [10**12, 10**12],
    [-1, 2],
    [0, 2**64],
    {},
    {"x": 1},
    [[[[[[[[]]]]]]]],
]


class Mutator:
    """Seeded mutations of bytes and JSON values."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def offset(self, data, focus=None):
        """A position in `data`, within its first `focus` bytes (a
        header) three times out of four when `focus` is given."""
        end = len(data)
        if focus and self.rng.random() < 0.75:
            end = min(end, focus)
        return self.rng.randrange(max(end, 1))

    def bytes(self, data, focus=None):
        """One random damage to `data` (bytes), as new bytes."""
        rng = self.rng
        buf = bytearray(data)
        kind = rng.randrange(9)
        at = self.offset(buf, focus)
        if kind == 0:  # truncation
            return bytes(buf[:at])
        if kind == 1:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = self.offset(buf, focus) if buf else 0
                if buf:
                    buf[i] ^= 1 << rng.randrange(8)
        elif kind == 2:  # bytes overwritten
            n = rng.randint(1, 8)
            buf[at : at + n] = rng.randbytes(n)
        elif kind == 3:  # a boundary integer written over a field
            value = rng.choice(INTERESTING + [len(data), len(data) + 1])
            width = rng.choice((1, 2, 4, 8))
            value &= (1 << (8 * width)) - 1
            buf[at : at + width] = value.to_bytes(width, "little")
        elif kind == 4:  # bytes inserted
            buf[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 5:  # a span deleted
            del buf[at : at + rng.randint(1, 64)]
        elif kind == 6:  # a span repeated elsewhere
            n = rng.randint(1, 64)
            chunk = buf[at : at + n]
            where = self.offset(buf, focus)
            buf[where:where] = chunk
        elif kind == 7:  # a span zeroed
            n = rng.randint(1, 32)
            buf[at : at + n] = bytes(len(buf[at : at + n]))
        else:  # garbage appended
            buf += rng.randbytes(rng.randint(1, 32))
        return bytes(buf)

    def json_value(self, value):
        """`value` (parsed JSON) with one structural change deep inside."""
        rng = self.rng
        if isinstance(value, dict) and value and rng.random() < 0.7:
            value = dict(value)
            key = rng.choice(list(value))
            kind = rng.randrange(6)
            if kind == 0:
                del value[key]
            elif kind == 1:
                value[key + rng.choice(["_", "x", ""])] = value.pop(key)
            elif kind == 2:
                value[rng.choice(["extra", "r", "dtype", key.upper()])] = (
                    rng.choice(JSON_VALUES)
                )
            else:
                value[key] = self.json_value(value[key])
            return value
        if isinstance(value, list) and value and rng.random() < 0.7:
            value = list(value)
            i = rng.randrange(len(value))
            kind = rng.randrange(4)
            if kind == 0:
                del value[i]
            elif kind == 1:
                value.append(value[i])
            else:
                value[i] = self.json_value(value[i])
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if rng.random() < 0.5:
                return rng.choice([0, -value, value + 1, value * 10**6, 10**12])
        return rng.choice(JSON_VALUES)

    def json_text(self, value):
        """JSON text of `value` with one change: structural (mostly), a key
        repeated, or the text itself damaged."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.15 and isinstance(value, dict) and value:
            return duplicate_key_json(value, rng)
        text = json.dumps(self.json_value(value))
        if roll > 0.9:
            return self.bytes(text.encode()).decode("utf-8", "replace")
        return text


def duplicate_key_json(value, rng):
    """JSON text of object `value` with one key (at some depth) twice."""
    key = rng.choice(list(value))
    inner = value[key]
    if isinstance(inner, dict) and inner and rng.random() < 0.5:
        repeated = duplicate_key_json(inner, rng)
        items = [json.dumps(k) + ": " + json.dumps(v) for k, v in value.items()]
        items[list(value).index(key)] = json.dumps(key) + ": " + repeated
        return "{" + ", ".join(items) + "}"
    items = [json.dumps(k) + ": " + json.dumps(v) for k, v in value.items()]
    items.append(json.dumps(key) + ": " + json.dumps(rng.choice(JSON_VALUES)))
    return "{" + ", ".join(items) + "}"
