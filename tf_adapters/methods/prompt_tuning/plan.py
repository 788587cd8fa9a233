import keras
import numpy as np

from tf_adapters.core.adapter_layer import adapter_dtype_policy
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.plan import AdapterPlan
from tf_adapters.methods.prompt_tuning.prompt_embedding import PROMPT_ATTR
from tf_adapters.methods.prompt_tuning.prompt_embedding import PromptEmbedding


def plan_prompt_tuning(backbone, config, name):
    embedding = getattr(backbone, "token_embedding", None)
    if not isinstance(embedding, keras.layers.Embedding):
        raise ValueError(
            f"{type(backbone).__name__} has no `token_embedding` Embedding "
            "layer; prompt tuning needs one."
        )
    existing = getattr(embedding, PROMPT_ATTR, None)
    if existing is not None:
        raise ValueError(
            "The model already has a prompt-tuning adapter "
            f"({existing.adapter_name!r}); delete it first."
        )
    slot = next(s for s in iter_slots(backbone) if s.layer is embedding)
    table = PromptEmbedding(
        config.num_virtual_tokens,
        embedding.output_dim,
        name,
        dtype=adapter_dtype_policy(embedding),
        name="prompt_embedding",
    )
    table.build()
    if config.init == "vocab":
        rng = np.random.default_rng(config.seed)
        ids = rng.integers(0, embedding.input_dim, config.num_virtual_tokens)
        rows = keras.ops.take(embedding.embeddings, ids, axis=0)
        table.prompt_embeddings.assign(keras.ops.cast(rows, "float32"))
    plan = AdapterPlan(name, config)
    plan.prompt = (slot, table)
    return plan
