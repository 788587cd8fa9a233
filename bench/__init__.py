"""tf_adapters benchmarks: training, generation and serving speed, with
PyTorch peers (PEFT LoRA training, `transformers` generation) measured in
the same rounds.

Run from the repository root: `python -m bench` (see README, Performance).
Not a test: the numbers depend on the machine; ratios come from rounds
interleaved in one process, so noise hits both sides of each ratio alike,
and a run that shared the machine is labelled so (`bench.load`).
"""
