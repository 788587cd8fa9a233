from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.bottleneck.config import BottleneckConfig

__all__ = [
    "BottleneckConfig",
    "BottleneckLayer",
    "InputTap",
    "ParallelBottleneckLayer",
]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "BottleneckLayer": "tf_adapters.methods.bottleneck.bottleneck_layer",
        "InputTap": "tf_adapters.methods.bottleneck.parallel_layer",
        "ParallelBottleneckLayer": (
            "tf_adapters.methods.bottleneck.parallel_layer"
        ),
    },
)
