"""A Keras `ExportArchive` that stores each variable once."""

import keras


def new_export_archive():
    """A `keras.export.ExportArchive` that stores each variable once.

    On the TensorFlow backend, Keras 3.15 writes every weight twice: once as
    the tracked `keras.Variable` and once as the raw `tf.Variable` that the
    endpoints capture (keras-team/keras#23553), doubling the export's size
    and the memory TF Serving needs. This archive tracks the raw
    `tf.Variable`s themselves, so the checkpoint holds each one once and the
    signatures (also in TF1-style loaders: TF Serving, `saved_model_cli`)
    restore exactly the variables they use.

    Relies on `ExportArchive._filter_and_track_resources` (the step that
    collects the variables, wrapped here on the instance, since
    `keras.export.ExportArchive()` returns a backend class),
    `ExportArchive._tf_trackable` and `keras.Variable._value` (the backend
    variable). Checked on Keras 3.15-3.16 (dev) with keras-hub 0.32-0.33
    (dev). Public alternative: a plain
    `ExportArchive` (twice the size) until the Keras issue is fixed.
    """
    archive = keras.export.ExportArchive()
    collect = archive._filter_and_track_resources

    def collect_once():
        collect()
        trackable = archive._tf_trackable
        for attr in (
            "variables",
            "trainable_variables",
            "non_trainable_variables",
        ):
            raw = [getattr(v, "_value", v) for v in getattr(trackable, attr)]
            setattr(trackable, attr, raw)

    archive._filter_and_track_resources = collect_once
    return archive
