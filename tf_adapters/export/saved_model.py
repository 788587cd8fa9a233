"""Versioned SavedModel exports in TF Serving's layout.

`saved_models/<name>/<version>/` with integer versions; the next free version
by default; an existing version is never overwritten. Each export is written
to a hidden temporary folder beside the versions (TF Serving only loads
integer-named folders) and renamed into place when complete, so a crash never
leaves a half-written version for TF Serving to pick up.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf


def new_export_archive():
    """A Keras `ExportArchive` that stores each variable once.

    On the TensorFlow backend, Keras 3.15 writes every weight twice: once as
    the tracked `keras.Variable` and once as the raw `tf.Variable` that the
    endpoints capture (keras-team/keras#23553), doubling the export's size
    and the memory TF Serving needs. This archive drops the raw duplicates of
    tracked variables before writing; endpoint-only variables are kept.
    (`keras.export.ExportArchive()` returns a backend class, so the fix is
    applied to the instance.)
    """
    archive = keras.export.ExportArchive()
    collect = archive._filter_and_track_resources

    def collect_once():
        collect()
        trackable = archive._tf_trackable
        tracked = {id(getattr(v, "_value", v)) for v in trackable.variables}
        trackable._all_variables = [
            v for v in trackable._all_variables if id(v) not in tracked
        ]

    archive._filter_and_track_resources = collect_once
    return archive


def next_version(model_dir):
    """One more than the highest integer version under `model_dir`."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def _token_spec():
    return {
        "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
        "padding_mask": tf.TensorSpec(
            [None, None], tf.int32, name="padding_mask"
        ),
    }


def export_classifier(
    classifier, export_dir="saved_models", name="classifier", version=None
):
    """Exports a `LabelWordClassifier` with a `classify` signature.

    `classify` (also `serving_default`) takes `token_ids` and
    `padding_mask` (int32, `[batch, length]`) and returns `probabilities`
    (`[batch, num_labels]`).

    Returns:
        The path of the new version folder.
    """
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

    if not classifier.built:
        ones = tf.ones((1, 1), tf.int32)
        classifier({"token_ids": ones, "padding_mask": ones})

    def classify(inputs):
        logits = classifier(inputs, training=False)
        return {"probabilities": keras.ops.softmax(logits, axis=-1)}

    archive = new_export_archive()
    archive.track(classifier)
    archive.add_endpoint("classify", classify, input_signature=[_token_spec()])
    archive.add_endpoint(
        "serving_default", classify, input_signature=[_token_spec()]
    )
    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        archive.write_out(tmp, verbose=False)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
