"""The figures of docs/interaction.md from a compare folder (RUNS):
AdaLoRA's final rank per layer (report.json) and the trained fusion's
mixing weights on 64 test reviews (tfa.fusion_weights).

Usage:
    python docs/make_interaction_figures.py RUNS OUT
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import yaml

import tf_adapters as tfa
from tf_adapters.data.classification import load_classification_records
from tf_adapters.data.encoding import encode_templated
from tf_adapters.data.splits import split_records

# The prompt the runs were trained with (the main job's first default).
with open(os.path.join(os.path.dirname(__file__), "first_prompt.yaml")) as f:
    FIRST_PROMPT = yaml.safe_load(f)["template"]

RUNS, OUT = sys.argv[1], sys.argv[2]


def layer_of(path):
    return int(path.split("/")[0].rsplit("_", 1)[1])


report = json.load(open(os.path.join(RUNS, "adalora", "report.json")))
ranks = report["adalora_ranks"]
fig, ax = plt.subplots(figsize=(9, 3.2))
for offset, role in ((-0.2, "query"), (0.2, "value")):
    paths = [p for p in ranks if p.endswith(role)]
    ax.bar(
        np.array([layer_of(p) for p in paths]) + offset,
        [ranks[p] for p in paths],
        0.4,
        label=f"{role} projections",
    )
ax.axhline(8, color="grey", lw=0.8, ls=":", label="target (average)")
ax.set_xlabel("decoder layer")
ax.set_ylabel("rank kept (of 12)")
ax.set_title(
    "AdaLoRA on sentiment, embedded SmolLM2-135M: final rank per layer "
    f"(48 steps, accuracy {report['adapted']['accuracy']:.3f})"
)
ax.legend(fontsize=8)
plt.tight_layout()
plt.savefig(os.path.join(OUT, "adalora_ranks.png"), dpi=110)

fusion = os.path.join(RUNS, "fusion")
freport = json.load(open(os.path.join(fusion, "report.json")))
model = tfa.load_base("embedded", sequence_length=80)
for name in freport["fused"]:
    tfa.load_adapter(model, os.path.join(fusion, "fused", name), activate=False)
tfa.load_adapter(model, os.path.join(fusion, "adapter"))
records, _ = load_classification_records("sentiment")
test = split_records(records, test=400, validation=0, seed=0)["test"][:64]
enc = encode_templated(
    [r["text"] for r in test], model.preprocessor.tokenizer, FIRST_PROMPT, 80
)
weights = tfa.fusion_weights(model, enc.x)
json.dump(
    weights, open(os.path.join(OUT, "fusion_weights.json"), "w"), indent=1
)
first = list(freport["fused"])[0]
label = freport["fused"][first].split("/")[0]
fig, ax = plt.subplots(figsize=(9, 3.4))
for role, marker in (("query", "o"), ("value", "s")):
    paths = [p for p in weights if p.endswith(role)]
    ax.plot(
        [layer_of(p) for p in paths],
        [weights[p][first] for p in paths],
        marker + "-",
        label=f"{role} projections",
    )
ax.axhline(0.5, color="grey", lw=0.8, ls=":")
ax.set_ylim(0, 1)
ax.set_xlabel("decoder layer")
ax.set_ylabel(f"weight on the {label} adapter\n(QA adapter: 1 minus this)")
ax.set_title(
    "AdapterFusion of the sentiment and QA LoRA adapters, trained 48 "
    "steps on sentiment\n(accuracy "
    f"{freport['adapted']['accuracy']:.3f}): mean mixing weights over "
    "64 test reviews' tokens",
    fontsize=10,
)
ax.legend(fontsize=8)
plt.tight_layout()
plt.savefig(os.path.join(OUT, "fusion_weights.png"), dpi=110)
