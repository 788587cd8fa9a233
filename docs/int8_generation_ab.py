"""Batch-1 greedy generation: merged LoRA in float32 against the same
model with Keras's weight-only int8 (docs/performance.md, generation).

    PYTHONPATH=. python docs/int8_generation_ab.py [SHAPE]

Builds `bench.generate`'s merged-LoRA model twice (same random weights),
quantizes the second one's weights to int8 (activations stay float32) and
times both as the bench times generation (`bench.generate._batch_rows`:
first call, then 5 interleaved rounds of 32 new tokens after a 32-token
prompt, XLA). The float32 model is the row `base`, so the int8 row's
`vs_base` is its speed over float32's.
"""

import json
import sys

import keras

from bench import generate
from bench.shapes import id_range

NEW_TOKENS = 32


def main(shape="gpt2_small"):
    lms = {
        v: generate.build_lm(shape, "lora_merged", True)
        for v in ("base", "int8")
    }
    config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    lms["int8"].backbone.quantize(config=config)
    lms["int8"].compile(sampler="greedy", jit_compile=True)
    callers = {
        v: lambda x, lm=lm: lambda: lm.generate(x, stop_token_ids=None)
        for v, lm in lms.items()
    }
    x = generate.prompts(1, 32, NEW_TOKENS, id_range(shape))
    rows = generate._batch_rows(callers, x, 1, NEW_TOKENS, rounds=5, steps=1)
    print(json.dumps({"shape": shape, **rows}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
