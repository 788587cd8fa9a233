"""Every use of a private Keras / keras-hub / TensorFlow attribute.

The rest of tf_adapters reaches Keras, keras-hub and TensorFlow through
their public APIs and through the small named functions here; a test
(`tests/compat/test_no_private_access.py`) fails on a private attribute of
theirs used anywhere else. Each function says what it relies on, the
versions it was checked on, and what the public alternative would be, so an
upgrade that breaks one breaks it here, in one place, with a test
(`tests/compat/`) that names it.

- `layers`: a layer's direct sublayers and own variables; attributes that
  Keras must not track.
- `tracking`: swapping a sublayer of a built layer in place.
- `class_swap`: giving a live keras-hub object an adapted twin class.
- `trainer`: building the optimizer and metrics before the first trace;
  `fit` under `MultiWorkerMirroredStrategy`; dropping compiled functions.
- `export`: an `ExportArchive` that stores each variable once.
- `optimizers`: where a variable sits among an optimizer's, and the
  weight-decay exclusions `get_config` leaves out (LoRA+).
- `attention`: extra keys and values inside keras-hub attention layers,
  after their KV cache (prefix tuning).
"""
