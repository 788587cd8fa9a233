"""Versioned SavedModel exports in TF Serving's layout.

`saved_models/<name>/<version>/` with integer versions; the next free version
by default; an existing version is never overwritten. Each export is written
to a hidden temporary folder beside the versions (TF Serving only loads
integer-named folders) and renamed into place when complete, so a crash never
leaves a half-written version for TF Serving to pick up.
"""

import contextlib
import os

import keras
import keras_hub
import tensorflow as tf

from tf_adapters.compat.export import new_export_archive
from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.routing import route_by_example
from tf_adapters.core.routing import route_by_weights
from tf_adapters.core.state import get_state
from tf_adapters.generation.causal_lm_endpoints import SPECS
from tf_adapters.generation.causal_lm_endpoints import TEXT_ENDPOINTS
from tf_adapters.generation.causal_lm_endpoints import causal_lm_endpoints


def next_version(model_dir):
    """One more than the highest integer version under `model_dir`."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def write_versioned(archive, export_dir, name, version=None):
    """Writes `archive` as `export_dir/name/<version>/`, atomically: a
    failed write (a full disk raises `SaveError`) leaves no folder behind
    and the other versions as they were."""
    if not isinstance(name, str) or not name or os.sep in name:
        raise ValueError(
            f"`name` must be a folder name (no '{os.sep}'). Received: {name!r}."
        )
    model_dir = os.path.join(export_dir, name)
    version = next_version(model_dir) if version is None else version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive int. Received: {version!r}."
        )
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(
            f"{final} already exists; versions are never overwritten. Omit "
            "`version` to write the next free one."
        )
    # The temporary folder's name starts with a dot: TF Serving only loads
    # integer-named versions. A full disk raises `SaveError`.
    with atomic_directory(final, overwrite=False) as tmp:
        archive.write_out(tmp, verbose=False)
    return final


def export_saved_model(
    model,
    export_dir="saved_models",
    name=None,
    version=None,
    merge=True,
    max_prompt_length=None,
    text=True,
    adapters=None,
):
    """Exports a model as a versioned SavedModel for TF Serving.

    A keras-hub `CausalLM` gets `serving_default` (`prompts`,
    `max_new_tokens` → `outputs`, greedy), `sample` (the same plus
    `temperature`, `top_k`, `top_p`, `seed`), their token-id twins
    `generate_ids` and `sample_ids`, and `logits`; a
    `LabelWordClassifier` or `LastTokenClassifier` gets `classify` (also
    `serving_default`).

    Args:
        model: `keras_hub.models.CausalLM`, `LabelWordClassifier` or
            `LastTokenClassifier`.
        export_dir: str. Root of the exports. Defaults to `"saved_models"`.
        name: str. Model name (folder). Defaults to the model's name.
        version: int. Defaults to the next free version.
        merge: bool. Merge the active adapter (LoRA, IA3) into the exported
            weights; the model itself is left exactly as it was. Defaults to
            `True`.
        max_prompt_length: int. Longest prompt (in tokens) `serving_default`
            accepts. Defaults to the preprocessor's `sequence_length`.
        text: bool. Add the string signature (`serving_default` of a causal
            LM). Tokenizing in the graph uses TensorFlow Text ops
            (`RegexSplitWithOffsets`...), which stock TF Serving and
            `saved_model_cli` lack; with `text=False` (no `generate`,
            `sample`) the export holds only
            stock-TF ops and `serving_default` is `generate_ids`. Loading a
            text export in Python needs `import tensorflow_text` first.
            Defaults to `True`.
        adapters: list of str. Serve several adapters from one SavedModel:
            the base weights once, each adapter's weights once, and an
            `adapter` input (a name per example) on every signature, so one
            batch may mix adapters; each signature also has a
            `<signature>_weighted` twin whose `adapter_weights` input (float,
            `(batch, len(adapters))`) scales each adapter's update per
            example, for a weighted mix of adapters, and `adapter_names`
            returns the column order. Prompt-tuning adapters cannot be mixed
            this way. Implies `merge=False`. Defaults to `None` (the model as
            it is, with its active adapter).

    Returns:
        str. The path of the new version folder,
        `export_dir/name/<version>`.

    Example:
    >>> import os, tempfile, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> classifier = tfa.LastTokenClassifier(backbone, num_classes=2)
    >>> path = tfa.export_saved_model(
    ...     classifier, tempfile.mkdtemp(), name="sentiment")
    >>> os.path.basename(path)
    '1'
    """
    from tf_adapters.injection.unload import temporarily_merged
    from tf_adapters.tasks.label_word_classifier import LabelWordClassifier
    from tf_adapters.tasks.last_token_classifier import LastTokenClassifier

    if isinstance(model, (LabelWordClassifier, LastTokenClassifier)):
        adapted, endpoints = model.backbone, _classifier_endpoints(model)
        default = "classify"
    elif isinstance(model, keras_hub.models.CausalLM):
        adapted = model
        endpoints = causal_lm_endpoints(model, max_prompt_length)
        if not text:
            for key in TEXT_ENDPOINTS:
                endpoints.pop(key, None)
        default = "generate" if "generate" in endpoints else "generate_ids"
    else:
        raise TypeError(
            "`model` must be a keras-hub CausalLM, a LabelWordClassifier or "
            "a LastTokenClassifier. "
            f"Received: {type(model).__name__}."
        )
    name = name or model.name
    if adapters is not None:
        _check_routable(_backbone_of(adapted), adapters)
        endpoints = _routed(endpoints, list(adapters))
        merge = False
    with contextlib.ExitStack() as stack:
        if merge and get_state(_backbone_of(adapted)) is not None:
            stack.enter_context(temporarily_merged(adapted))
        archive = new_export_archive()
        archive.track(model)
        # The default endpoint goes first: `write_out` serves the first
        # endpoint's traced function as `serving_default` too, so the model
        # is not traced a second time for it.
        for endpoint in [default, *(k for k in endpoints if k != default)]:
            fn, signature = endpoints[endpoint]
            archive.add_endpoint(endpoint, fn, input_signature=signature)
        return write_versioned(archive, export_dir, name, version)


def _check_routable(backbone, adapters):
    state = get_state(backbone)
    known = list(state.adapters) if state is not None else []
    if not adapters or isinstance(adapters, str):
        raise ValueError(
            f"`adapters` must be a non-empty list of adapter names from "
            f"{known}. Received: {adapters!r}."
        )
    for adapter in adapters:
        if adapter not in known:
            raise ValueError(
                f"Unknown adapter {adapter!r}; the model has {known}."
            )
        entry = state.adapters[adapter]
        if entry.merged:
            raise ValueError(
                f"Adapter {adapter!r} is merged; unmerge it before a "
                "multi-adapter export."
            )
        if entry.config.method == "prompt_tuning":
            raise ValueError(
                f"Adapter {adapter!r} is prompt tuning, which changes the "
                "sequence length and cannot be chosen per example; export "
                "it on its own."
            )
        if entry.config.method == "fusion":
            raise ValueError(
                f"Adapter {adapter!r} is a fusion, which mixes adapters "
                "inside each layer and cannot be chosen per example; export "
                "it on its own (active, with `adapters=None`)."
            )


def _routed(endpoints, names):
    """Endpoints that take an `adapter` name per example first, their
    `<endpoint>_weighted` twins that take `adapter_weights` (a float per
    example and adapter, columns in the order of `names`), and
    `adapter_names` (that order)."""
    table = tf.constant(names)
    name_spec = SPECS["adapter"]
    weight_spec = tf.TensorSpec(
        [None, len(names)], tf.float32, name="adapter_weights"
    )

    def by_name(fn):
        def route(adapter, *args):
            match = tf.equal(adapter[:, None], table[None, :])
            check = tf.debugging.assert_equal(
                tf.reduce_all(tf.reduce_any(match, axis=1)),
                True,
                message=f"unknown adapter name; this model serves {names}",
            )
            with tf.control_dependencies([check]):
                index = tf.argmax(
                    tf.cast(match, tf.int32), axis=1, output_type=tf.int32
                )
            with route_by_example(index, names):
                return fn(*args)

        return route

    def by_weights(fn):
        def route(adapter_weights, *args):
            weights = tf.debugging.assert_all_finite(
                adapter_weights, "adapter_weights must be finite"
            )
            with route_by_weights(weights, names):
                return fn(*args)

        return route

    routed = {}
    for key, (fn, signature) in endpoints.items():
        routed[key] = (by_name(fn), [name_spec, *signature])
        routed[f"{key}_weighted"] = (by_weights(fn), [weight_spec, *signature])
    routed["adapter_names"] = (lambda: {"adapter_names": table}, [])
    return routed


def _backbone_of(model):
    return getattr(model, "backbone", model)


def _classifier_endpoints(classifier):
    if not classifier.built:
        ones = tf.ones((1, 1), tf.int32)
        classifier({"token_ids": ones, "padding_mask": ones})

    def classify(token_ids, padding_mask):
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        logits = classifier(x, training=False)
        return {"probabilities": keras.ops.softmax(logits, axis=-1)}

    spec = [SPECS["token_ids"], SPECS["padding_mask"]]
    return {"classify": (classify, spec)}
