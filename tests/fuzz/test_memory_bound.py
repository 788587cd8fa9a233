"""Headers that claim terabytes are refused in bounded memory (issue 20):
each binary reader gets files declaring about 10^12 elements (or a 2^62
string, array or 2^63-byte header), read in a fresh process whose peak
resident memory is measured; a real 24 MB array shows the measurement
sees an allocation."""

from fuzz import oversized

LIMIT_MB = 200


def test_oversized_headers_are_refused_in_bounded_memory(tmp_path):
    rows = oversized.probe(oversized.write_cases(str(tmp_path)))
    *claims, control = rows
    assert {r["reader"] for r in claims} == {
        "npz",
        "gguf",
        "safetensors",
        "lora_h5",
    }
    for row in claims:
        assert row["outcome"] == "CorruptFileError", row
        assert row["rss_growth_mb"] < LIMIT_MB, row
        assert row["seconds"] < 1.0, row
    assert control["outcome"] == "accepted", control
    if control["method"] == "VmHWM reset":  # else earlier peaks hide it
        assert control["rss_growth_mb"] > 20, control
