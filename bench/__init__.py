"""tf_adapters benchmarks: training, generation and serving speed.

Run from the repository root: `python -m bench` (see README, Performance).
Not a test: the numbers depend on the machine; ratios come from rounds
interleaved in one process, so noise hits both sides of each ratio alike.
"""
