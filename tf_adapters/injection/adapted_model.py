"""The behaviour an adapted keras-hub backbone or causal LM gains.

An adapted backbone carries its adapters' configs (`AdapterState`) and writes
them into `get_config()`, so `model.save("x.keras")` and
`keras.saving.load_model` rebuild the same adapters before the weights are
loaded. When a prompt-tuning adapter is active it prepends the virtual tokens
itself and strips their positions from its output.
"""

import keras_hub
from keras import ops

from tf_adapters.compat.class_swap import mixed_class
from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.class_swap import swap_out
from tf_adapters.core.state import get_state
from tf_adapters.injection.lifecycle import restore_adapters
from tf_adapters.methods.prompt_tuning.prompt_embedding import PROMPT_ATTR


def active_prompt(backbone):
    """The enabled `PromptEmbedding` on the token embedding, if any."""
    embedding = getattr(backbone, "token_embedding", None)
    prompt = getattr(embedding, PROMPT_ATTR, None)
    if prompt is not None and prompt.adapter_enabled:
        return prompt
    return None


def prepend_virtual_tokens(inputs, prompt, vocabulary_size):
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        raise ValueError(
            "A prompt-tuned model takes a dict with 'token_ids' and "
            f"'padding_mask'. Received: {type(inputs).__name__}."
        )
    token_ids = inputs["token_ids"]
    batch = ops.shape(token_ids)[0]
    n = prompt.num_virtual_tokens
    virtual = ops.arange(n, dtype="int32") + vocabulary_size
    virtual = ops.broadcast_to(ops.expand_dims(virtual, 0), (batch, n))
    outputs = dict(inputs)
    outputs["token_ids"] = ops.concatenate(
        [ops.cast(virtual, token_ids.dtype), token_ids], axis=1
    )
    if "padding_mask" in inputs:
        mask = inputs["padding_mask"]
        ones = ops.ones((batch, n), dtype=mask.dtype)
        outputs["padding_mask"] = ops.concatenate([ones, mask], axis=1)
    return outputs


class AdaptedBackbone:
    """Mixed into a keras-hub `Backbone` by `add_adapter`."""

    class_prefix = "Adapted"

    def get_config(self):
        config = super().get_config()
        state = get_state(self)
        if state is not None:
            config["tf_adapters"] = state.to_config()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        saved = config.pop("tf_adapters", None)
        backbone = super().from_config(config)
        if saved:
            restore_adapters(backbone, saved)
        return backbone

    # The signature matches `Functional.call`: Keras reads it to decide
    # whether to pass `training` and `mask`.
    def call(self, inputs, training=None, mask=None, **kwargs):
        prompt = active_prompt(self)
        if prompt is None:
            return super().call(inputs, training=training, mask=mask, **kwargs)
        vocabulary_size = self.token_embedding.input_dim
        inputs = prepend_virtual_tokens(inputs, prompt, vocabulary_size)
        outputs = super().call(inputs, training=training, mask=mask, **kwargs)
        return outputs[:, prompt.num_virtual_tokens :]


class AdaptedCausalLM:
    """Mixed into a keras-hub `CausalLM` so `generate` sees prompt tuning."""

    class_prefix = "Adapted"
    # keras-hub's `from_preset` picks a task class among registered subclasses
    # with a matching `backbone_cls`; adapted twins must never be picked.
    backbone_cls = None

    def generate_step(self, inputs, stop_token_ids=None):
        prompt = active_prompt(self.backbone)
        if prompt is None:
            return super().generate_step(inputs, stop_token_ids=stop_token_ids)
        vocabulary_size = self.backbone.token_embedding.input_dim
        inputs = prepend_virtual_tokens(inputs, prompt, vocabulary_size)
        outputs = super().generate_step(inputs, stop_token_ids=stop_token_ids)
        n = prompt.num_virtual_tokens
        return {key: value[:, n:] for key, value in outputs.items()}


def adapt_classes(backbone, task):
    """Gives the backbone (and a causal LM task) their adapted classes."""
    swap_in(backbone, AdaptedBackbone, register=True)
    if isinstance(task, keras_hub.models.CausalLM):
        swap_in(task, AdaptedCausalLM, register=True)


def unadapt_classes(backbone, task):
    """Gives the backbone (and task) back their keras-hub classes."""
    swap_out(backbone, AdaptedBackbone)
    if task is not None:
        swap_out(task, AdaptedCausalLM)


def register_keras_hub_classes():
    """Registers an adapted twin of every keras-hub backbone and causal LM,
    so `keras.saving.load_model` finds them in a fresh process."""
    for value in vars(keras_hub.models).values():
        if not isinstance(value, type):
            continue
        if issubclass(value, keras_hub.models.CausalLM):
            mixed_class(AdaptedCausalLM, value, register=True)
        elif issubclass(value, keras_hub.models.Backbone):
            mixed_class(AdaptedBackbone, value, register=True)
