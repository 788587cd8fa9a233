"""`tf.distribute` strategies for fine-tuning (`--strategy`).

The model, its adapters, the optimizer and the metrics are created in
`strategy.scope()`; Keras's `fit` splits each global batch across the
replicas (`--batch-size` is the global batch: per-replica batch ×
replicas). The data are token ids prepared by `tf.data`, never strings, so
no string preprocessing runs inside the replicated step.
"""

import os

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name):
    """The `tf.distribute.Strategy` named `name`.

    - `default`: one device (TensorFlow's default strategy).
    - `mirrored`: every local GPU (or the logical CPUs configured) of this
      machine, synchronous all-reduce.
    - `multi_worker`: `MultiWorkerMirroredStrategy`; each worker runs the
      same command with its own `TF_CONFIG`.
    - `tpu`: `TPUStrategy` on the TPU this VM is attached to (static shapes:
      batches are cut with `drop_remainder`).
    """
    # Here, not at the top: `STRATEGIES` feeds the CLI's parser, which
    # must not load TensorFlow.
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {list(STRATEGIES)}. Received: "
            f"strategy={name!r}."
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multi_worker needs TF_CONFIG (the cluster and "
                "this worker's task) in the environment of every worker."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Whether this process writes checkpoints, reports and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0
