"""Gradient checkpointing (rematerialization) of the decoder blocks.

Backpropagation keeps every intermediate activation of the forward pass
until the backward pass has used it; for a decoder that is, per block,
the attention scores (batch × heads × length², at length 1,024 the
largest tensors of the step), the feed-forward's hidden layer and every
dropout mask. Checkpointing a block keeps only its input: the backward
pass runs the block's forward again to get the rest back, one block at a
time. Peak memory then holds one block's activations instead of all of
them, for about a third more compute (each block's forward runs twice).
The usual scheme (Chen et al. 2016, "Training Deep Nets with Sublinear
Memory Cost"; Hugging Face's `gradient_checkpointing_enable`) checkpoints
each transformer block, which is what `checkpoint_decoder_layers` does.

Why not Keras's own switch: Keras decides per layer from the
`keras.RematScope` active when the layer was made, and on TensorFlow
wraps `layer.call` in `tf.recompute_grad`, whose graph-mode custom
gradient takes no keyword arguments; keras-hub calls its decoder blocks
with keyword arguments (`decoder_padding_mask=...`, `training=...`), so
under `tf.function` (every `fit`) it raises. Here each block's `__call__`
is wrapped in `keras.remat` (the same `tf.recompute_grad`) around a
function of the block's float tensors alone, positionally, the other
arguments held fixed; the recomputation goes through the block's own
`__call__` again, so its sublayers see the same `training` flag, autocast
and name scope as in the first pass. The blocks' dropout seeds are put
back to their values before the first pass, so the recomputed dropout
masks are those of the first pass and the gradients are exact.
"""

import keras
from keras import ops

from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.class_swap import swap_out


class CheckpointedBlockMixin:
    """Mixed into a decoder block by `checkpoint_decoder_layers`: each call
    with `training=True` is recomputed in the backward pass instead of
    keeping its activations.

    Other calls (inference, generation with a cache, symbolic calls) run
    as before: they take no gradient, so there is nothing to save.
    """

    # The mixed class keeps the block's class name: `.keras` files key the
    # weights of a functional model's layers by their class names.
    class_prefix = ""

    def __call__(self, *args, **kwargs):
        structure = (args, kwargs)
        flat = keras.tree.flatten(structure)
        inputs = [i for i, x in enumerate(flat) if _is_float_tensor(x)]
        if kwargs.get("training") is not True or not inputs:
            return super().__call__(*args, **kwargs)
        seeds = _seed_states(self)
        first_seeds = [ops.copy(seed) for seed in seeds]

        def forward(*tensors):
            # Dropout draws its masks from the seeds: the same seeds give
            # the recomputation the first pass's masks (and leave them
            # advanced as after one call).
            for seed, value in zip(seeds, first_seeds, strict=True):
                seed.assign(value)
            values = list(flat)
            for i, tensor in zip(inputs, tensors, strict=True):
                values[i] = tensor
            call_args, call_kwargs = keras.tree.pack_sequence_as(
                structure, values
            )
            return super(CheckpointedBlockMixin, self).__call__(
                *call_args, **call_kwargs
            )

        return keras.remat(forward)(*(flat[i] for i in inputs))


def _is_float_tensor(x):
    """A float tensor (what can carry a gradient); not a symbolic one."""
    return (
        ops.is_tensor(x)
        and not isinstance(x, keras.KerasTensor)
        and keras.backend.is_float_dtype(x.dtype)
    )


def _seed_states(layer):
    """The states of the seed generators of `layer` and its sublayers:
    `Layer.variables` is `Layer.weights` plus them."""
    weights = {id(w) for w in layer.weights}
    return [v for v in layer.variables if id(v) not in weights]


def decoder_layers(model):
    """The decoder blocks of a keras-hub backbone or task: the backbone's
    `transformer_layers` (GPT-2, GPT-NeoX, OPT, Llama, Mistral, Gemma,
    Phi-3, Qwen, ...).

    Raises:
        TypeError: `model` is not a Keras layer.
        ValueError: `model` has no decoder blocks; the message names its
            class.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "`model` must be a keras-hub backbone or task (a Keras layer). "
            f"Received: model={model!r} of type {type(model).__name__}."
        )
    backbone = getattr(model, "backbone", None)
    found = getattr(model, "transformer_layers", None)
    if not found and isinstance(backbone, keras.layers.Layer):
        found = getattr(backbone, "transformer_layers", None)
    blocks = list(found or [])
    if not blocks or not all(isinstance(b, keras.layers.Layer) for b in blocks):
        names = type(model).__name__
        if isinstance(backbone, keras.layers.Layer):
            names += f" (backbone {type(backbone).__name__})"
        raise ValueError(
            f"`model` {names} has no decoder blocks to checkpoint: gradient "
            "checkpointing needs a keras-hub backbone (or a task around "
            "one) whose `transformer_layers` lists its decoder blocks, "
            "such as GPT2Backbone or LlamaBackbone."
        )
    return blocks


def checkpoint_decoder_layers(model, enabled=True):
    """Turns gradient checkpointing of each decoder block on (or off).

    With it on, a training step keeps only each decoder block's input;
    the backward pass recomputes the block's activations from it, one
    block at a time. The step's peak memory then grows with one block's
    activations instead of all of them, for about a third more compute.
    Losses and gradients are those without it (dropout included), in
    eager mode, under `tf.function` and with XLA (`jit_compile=True`); in
    `mixed_bfloat16` under XLA, to bfloat16's rounding (XLA fuses the
    recomputation differently from the first pass).

    Only calls with `training=True` (what `fit` and `train_step` make)
    are checkpointed; inference and generation run as before. Adapters
    can be added or removed before or after (they replace sublayers
    inside the blocks, which are recomputed with them). It holds for the
    model in this process: a saved model or preset loads without it.

    Args:
        model: A keras-hub backbone, or a task (`CausalLM`, or a model
            with a `backbone` attribute) whose backbone has decoder blocks
            in `transformer_layers`.
        enabled: bool. `True` turns checkpointing on, `False` back off.
            Defaults to `True`.

    Returns:
        The list of decoder blocks (Keras layers), in order.

    Raises:
        TypeError: `model` is not a Keras layer.
        ValueError: `model` has no decoder blocks; the message names its
            class.

    Example:
    >>> import keras_hub, numpy as np, tensorflow as tf
    >>> import tf_adapters as tfa
    >>> from tf_adapters.training.remat import (
    ...     checkpoint_decoder_layers, is_checkpointed)
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> blocks = checkpoint_decoder_layers(backbone)
    >>> [is_checkpointed(block) for block in blocks]
    [True, True]
    >>> x = {"token_ids": np.ones((1, 4), "int32"),
    ...      "padding_mask": np.ones((1, 4), "int32")}
    >>> with tf.GradientTape() as tape:
    ...     loss = tf.reduce_sum(backbone(x, training=True))
    >>> grads = tape.gradient(loss, backbone.trainable_weights)
    >>> len(grads), all(g is not None for g in grads)
    (8, True)
    >>> _ = checkpoint_decoder_layers(backbone, enabled=False)
    >>> is_checkpointed(blocks[0])
    False
    """
    if not isinstance(enabled, bool):
        raise TypeError(
            f"`enabled` must be a bool. Received: enabled={enabled!r}."
        )
    blocks = decoder_layers(model)
    for block in blocks:
        if enabled:
            swap_in(block, CheckpointedBlockMixin)
        else:
            swap_out(block, CheckpointedBlockMixin)
    return blocks


def is_checkpointed(layer):
    """Whether `checkpoint_decoder_layers` turned checkpointing on for
    `layer` (a decoder block).

    Example:
    >>> import keras
    >>> from tf_adapters.training.remat import is_checkpointed
    >>> is_checkpointed(keras.layers.Dense(2))
    False
    """
    return isinstance(layer, CheckpointedBlockMixin)
