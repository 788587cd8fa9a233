import json

import keras
import keras_hub
import numpy as np
import tiny_models

from tf_adapters.models.loading import load_base


def test_local_hugging_face_folder_loads_with_equal_logits(tmp_path):
    reference = tiny_models.gpt2_causal_lm()
    keras.utils.set_random_seed(0)
    # keras-hub's HF GPT-2 loader assumes an FFN of 4 x hidden.
    backbone = tiny_models.gpt2(
        vocabulary_size=reference.backbone.vocabulary_size, intermediate_dim=32
    )
    model = keras_hub.models.GPT2CausalLM(
        backbone, preprocessor=reference.preprocessor
    )
    folder = tmp_path / "hf_gpt2"
    model.export_to_transformers(str(folder))
    # A real checkpoint names its architecture; keras-hub's exporter omits it.
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (folder / "config.json").write_text(json.dumps(config))

    loaded = load_base(str(folder), sequence_length=16)
    assert type(loaded) is keras_hub.models.GPT2CausalLM
    assert loaded.preprocessor.sequence_length == 16
    x = tiny_models.inputs()
    x["token_ids"] %= backbone.vocabulary_size
    np.testing.assert_allclose(
        np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5
    )
    text = " airplane at airport"
    assert loaded.preprocessor.tokenizer(text).tolist() == (
        model.preprocessor.tokenizer(text).tolist()
    )
