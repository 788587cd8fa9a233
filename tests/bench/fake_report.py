"""A `python -m bench` report around given runs, with a made-up machine."""

MACHINE = {
    "cpu": "cpu",
    "cores": 2,
    "tensorflow": "x",
    "keras": "x",
    "keras_hub": "x",
}


def bench_report(**parts):
    """The report dict `bench.report.markdown` reads, with `parts` (e.g.
    `train=[run]`, `load=...`) added."""
    return {
        "date": "now",
        "command": "python -m bench",
        "machine": MACHINE,
        **parts,
    }
