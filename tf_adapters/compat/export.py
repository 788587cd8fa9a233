"""A Keras `ExportArchive` that stores each variable once and does not
trace the tracked models' unused default save signatures."""

import contextlib

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
        with _no_default_save_signature(), _as_when_saving():
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


@contextlib.contextmanager
def _no_default_save_signature():
    """Keras models offer TensorFlow a `_default_save_signature` (a
    `tf.function` of the whole model, for `tf.saved_model.save(model)`
    without signatures). `ExportArchive` walks the tracked models for
    lookup tables, and TensorFlow's walk traces that function, once per
    model and nested model: on the embedded model each trace takes
    seconds, and the archive never saves them (its signatures are its own
    endpoints). The property is off during the walk. Where a Keras version
    has no such property, nothing changes."""
    owner = next(
        (
            cls
            for cls in keras.Model.__mro__
            if "_default_save_signature" in vars(cls)
        ),
        None,
    )
    if owner is None:
        yield
        return
    original = vars(owner)["_default_save_signature"]
    owner._default_save_signature = property(lambda self: None)
    try:
        yield
    finally:
        owner._default_save_signature = original


def _as_when_saving():
    """`ExportArchive` traces each endpoint to find its variables, and
    `tf.saved_model.save` traces it again: a function's traces are cached
    by context, and the save context (its variable policy) is part of the
    key. Tracing the first time inside a save context with the options
    `write_out` saves with (the defaults) lets the save reuse that trace: on
    the embedded model one trace of the classifier instead of two. Relies
    on TensorFlow's `save_context` (private, TF 2.x); without it, the
    second trace stays."""
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:
        return contextlib.nullcontext()
    import tensorflow as tf

    return save_context.save_context(tf.saved_model.SaveOptions())
