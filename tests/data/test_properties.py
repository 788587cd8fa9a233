"""Property-based tests (hypothesis): config parsing and text cleaning.

Each test counts the inputs it generated and requires at least 10,000, so
the budget is part of the test. `derandomize=True` makes CI runs
reproducible.
"""

import dataclasses

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import tf_adapters as tfa
from tf_adapters.data.cleaning import clean_text
from tf_adapters.pipeline.config import FinetuneConfig

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Values of every JSON/YAML type, including nested and awkward ones.
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=4,
)
FIELDS = [f.name for f in dataclasses.fields(FinetuneConfig)]
KEYS = st.sampled_from(FIELDS) | st.text(max_size=12)


def _documented(error):
    # Every documented error names what is wrong: a field or option.
    message = str(error)
    return "`" in message or "option" in message or "--" in message


def test_finetune_config_parsing_never_crashes():
    seen = []

    @settings(max_examples=10_000, **SETTINGS)
    @given(st.dictionaries(KEYS, VALUES, max_size=4))
    def check(options):
        seen.append(options)
        try:
            FinetuneConfig.from_dict(options)
        except (ValueError, TypeError) as e:
            assert _documented(e), (options, e)

    check()
    assert len(seen) >= 10_000


ADAPTER_CONFIGS = [
    tfa.LoraConfig,
    tfa.BottleneckConfig,
    tfa.IA3Config,
    tfa.PromptTuningConfig,
]
ADAPTER_KEYS = st.sampled_from(
    sorted(
        {f.name for c in ADAPTER_CONFIGS for f in dataclasses.fields(c)}
        | {"method"}
    )
)


def test_adapter_config_parsing_never_crashes():
    seen = []

    @settings(max_examples=2_500, **SETTINGS)
    @given(
        st.sampled_from(ADAPTER_CONFIGS),
        st.dictionaries(ADAPTER_KEYS | st.text(max_size=8), VALUES, max_size=4),
    )
    def check(cls, options):
        seen.append(options)
        try:
            config = cls.from_dict(options)
        except (ValueError, TypeError) as e:
            assert _documented(e) or "config" in str(e), (options, e)
        else:
            # What parses also round-trips through JSON.
            assert cls.from_json(config.to_json()) == config

    check()
    assert len(seen) >= 2_500


def test_cleaning_is_idempotent_and_total():
    seen = []

    @settings(max_examples=500, **SETTINGS)
    @given(st.lists(st.text(max_size=40), min_size=20, max_size=30))
    def check(texts):
        seen.extend(texts)
        once = clean_text(texts)
        twice = clean_text(once)
        assert once.numpy().tolist() == twice.numpy().tolist()
        for text in once.numpy():
            decoded = text.decode("utf-8")  # valid UTF-8 out
            assert decoded == decoded.strip()
            assert "  " not in decoded

    check()
    assert len(seen) >= 10_000
