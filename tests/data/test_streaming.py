import os
import subprocess
import sys
import textwrap

import numpy as np
import tiny_models

from tf_adapters.data.cleaning import clean_text
from tf_adapters.data.encoding import pack_texts
from tf_adapters.data.streaming import stream_lines
from tf_adapters.data.streaming import stream_packed

LINES = [
    " airplane at the airport",
    "",
    "  the\u200b air  plane ",
    " port\tat air",
] * 20


def test_stream_packed_equals_packing_the_cleaned_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("\n".join(LINES), encoding="utf-8")
    tokenizer = tiny_models.gpt2_causal_lm().preprocessor.tokenizer
    cleaned = [t.decode() for t in clean_text(LINES).numpy() if t.decode()]
    streamed = [t.numpy().decode() for t in stream_lines(str(path))]
    assert streamed == cleaned
    expected = pack_texts(cleaned, tokenizer, 8)
    batches = list(stream_packed(str(path), tokenizer, 8, 4, lines_per_batch=7))
    x = np.concatenate([b[0]["token_ids"] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    n = len(x)  # whole batches only
    assert n >= len(expected.x["token_ids"]) - 3
    np.testing.assert_array_equal(x, expected.x["token_ids"][:n])
    np.testing.assert_array_equal(y, expected.y[:n])


SCRIPT = """
import os, resource, sys
import tensorflow as tf
from tf_adapters.data.streaming import stream_lines
path, megabytes = sys.argv[1], int(sys.argv[2])
line = "The airplane waits at the airport for the pilot and the plane. " * 2
with open(path, "w") as f:
    block = "".join(f"{i} {line}\\n" for i in range(5000))
    while f.tell() < megabytes * 2**20:
        f.write(block)
lines = chars = 0
for batch in stream_lines(path).batch(4096):
    lines += int(batch.shape[0])
    chars += int(tf.reduce_sum(tf.strings.length(batch)))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(os.path.getsize(path), lines, chars, peak)
os.remove(path)
"""


def _peak_mb(tmp_path, megabytes):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT),
            str(tmp_path / f"{megabytes}.txt"),
            str(megabytes),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    size, lines, chars, peak = out.stdout.split()[-4:]
    assert int(lines) > 0 and int(chars) > 0.9 * int(size)
    return int(size) / 2**20, float(peak)


def test_reading_a_large_file_streams(tmp_path):
    # Every line of a 52 MB file goes through the pipeline, but peak memory
    # grows by far less than the file: it does not scale with the file
    # (measured: 1 MiB more for 88 MB more; holding the text would cost at
    # least the 48 MB difference).
    small_size, small_peak = _peak_mb(tmp_path, 4)
    large_size, large_peak = _peak_mb(tmp_path, 52)
    assert large_size - small_size > 47
    print(
        f"peak RSS: {small_size:.0f} MB file {small_peak:.0f} MiB, "
        f"{large_size:.0f} MB file {large_peak:.0f} MiB"
    )
    assert large_peak - small_peak < 24, (small_peak, large_peak)
