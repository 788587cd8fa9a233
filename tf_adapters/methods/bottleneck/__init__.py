from tf_adapters.methods.bottleneck.bottleneck_layer import BottleneckLayer
from tf_adapters.methods.bottleneck.config import BottleneckConfig
from tf_adapters.methods.bottleneck.parallel_layer import InputTap
from tf_adapters.methods.bottleneck.parallel_layer import (
    ParallelBottleneckLayer,
)

__all__ = [
    "BottleneckConfig",
    "BottleneckLayer",
    "InputTap",
    "ParallelBottleneckLayer",
]
