"""Batch-1 greedy generation: merged LoRA in float32 against the same
model with Keras's weight-only int8 (docs/performance.md, generation).

    PYTHONPATH=. python docs/int8_generation_ab.py [SHAPE]

Builds `bench.generate`'s merged-LoRA model twice (same random weights),
quantizes the second one's weights to int8 (activations stay float32),
times 5 interleaved rounds of 32 new tokens after a 32-token prompt with
XLA, and prints new tokens per second and the paired speed ratio.
"""

import json
import sys
import time

import keras

from bench import generate
from bench.shapes import id_range
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import summary

NEW_TOKENS = 32


def main(shape="gpt2_small"):
    lms = {
        v: generate.build_lm(shape, "lora_merged", True)
        for v in ("float", "int8")
    }
    config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    lms["int8"].backbone.quantize(config=config)
    lms["int8"].compile(sampler="greedy", jit_compile=True)
    x = generate.prompts(1, 32, NEW_TOKENS, id_range(shape))
    calls = {
        v: (lambda lm=lm: lm.generate(x, stop_token_ids=None))
        for v, lm in lms.items()
    }
    first = {}
    for v, call in calls.items():
        start = time.perf_counter()
        call()
        first[v] = time.perf_counter() - start
    times = interleaved(calls, 5, 1)
    result = {
        "shape": shape,
        "first_call_s": first,
        "new_tokens_per_s": {
            v: NEW_TOKENS / summary(times[v])["median_s"] for v in calls
        },
        "int8_vs_float": paired_ratio(times, "int8", "float", 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
