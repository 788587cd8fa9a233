"""Quiet by default: what TensorFlow, XLA and Keras print that a user of
`tf-adapters` need not read, hidden unless `--verbose`.

- TensorFlow's C++ log, by `TF_CPP_MIN_LOG_LEVEL=3` (unless the
  environment sets it): notes on oneDNN and CPU features, `cuInit`
  failures on machines without a GPU, XLA's "Compiled cluster" lines, and
  the "Error parsing text-format tensorflow.XlaSerializedCacheEntry" line
  that XLA's persistent cache prints on every hit. The runs that `compare`
  and `sweep` start inherit the setting.
- The lines absl writes while TensorFlow loads, before its logging is set
  up ("WARNING: All log messages before absl::InitializeLog() ...",
  "Could not find cuda drivers ..."): in TensorFlow 2.21 no level or
  variable hides them, so the command reads file descriptor 2 aside while
  TensorFlow loads (`filtered_stderr`) and passes on every other line.
- Keras's warnings that `shuffle=True` is ignored for a `tf.data.Dataset`
  and that a dict of inputs is not in the model's order, and TensorFlow's
  INFO log ("Assets written to ...").

Python errors and tf_adapters' own log lines still show.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

# An absl log line below FATAL (`I0000 00:00:1796177.5  1445 port.cc:153]
# ...`), or absl's note that such lines go to stderr until logging is set up.
ABSL_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
)
KERAS_WARNINGS = (
    "`shuffle=True` was passed, but will be ignored",
    "The structure of `inputs` doesn't match the expected structure",
)


def hide_noise():
    """Sets TensorFlow's C++ log level, and drops Keras's harmless warnings
    and TensorFlow's INFO log. Call it before TensorFlow loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for text in KERAS_WARNINGS:
        warnings.filterwarnings(
            "ignore", message=re.escape(text), category=UserWarning
        )
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


@contextlib.contextmanager
def filtered_stderr(noise=ABSL_NOISE):
    """Runs the block with file descriptor 2, where C++ code writes, read
    into a temporary file; then writes its lines to stderr but those that
    `noise` matches at their start.

    Python's own `sys.stderr` writes in the block are kept too. Output of
    a crash inside the block (the process ends there) is lost: `--verbose`
    shows it.

    Example:
    >>> import io, os
    >>> from tf_adapters.cli.quiet import filtered_stderr
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     with filtered_stderr(re.compile("noise")):
    ...         _ = os.write(2, b"noise: hidden\\nkept\\n")
    >>> err.getvalue()
    'kept\\n'
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            for line in text.splitlines(keepends=True):
                if not noise.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
