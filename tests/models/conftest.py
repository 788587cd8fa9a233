import pytest

from tf_adapters.models.loading import embedded_gguf_path
from tf_adapters.models.loading import load_base


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfa_cache"))


@pytest.fixture(scope="session")
def embedded(model_cache):
    """The embedded default, converted once for the whole test session."""
    return load_base(sequence_length=32, cache=model_cache)


@pytest.fixture(scope="session")
def gguf_path():
    return embedded_gguf_path()
