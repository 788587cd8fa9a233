"""A LoRA training step of the main job's shape in float32 and in
`mixed_bfloat16` (docs/performance.md, bfloat16 on CPUs with AMX).

    PYTHONPATH=. python docs/bf16_step_ab.py DTYPE

One process per dtype policy (Keras's policy is set when the model is
built): `bench.train.run` on the SmolLM2-135M shape (random weights),
LoRA only, batch 16 × 64 tokens (the main job's), without XLA (as the
main job runs), a first step, two warm-up steps, then 3 rounds of 2
timed steps. Prints the median, min and max step time and tokens/s; run
it alternately for `float32` and `mixed_bfloat16` to compare.
"""

import json
import sys

from bench import train


def main(dtype="float32"):
    result = train.run(
        shape="smollm2_135m",
        methods=("lora",),
        dtype=dtype,
        jit_compile=False,
        batch_size=16,
        sequence_length=64,
        rounds=3,
        steps=2,
        peak_sizes=None,
    )
    row = result["methods"]["lora"]
    keys = ("median_s", "min_s", "max_s", "first_step_s", "tokens_per_s")
    print(json.dumps({"dtype": dtype, **{k: round(row[k], 3) for k in keys}}))


if __name__ == "__main__":
    main(*sys.argv[1:])
