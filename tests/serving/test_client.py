import numpy as np
import pytest
import tensorflow as tf
import tiny_models

from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.serving.client import decode_grpc_response
from tf_adapters.serving.client import decode_rest_response
from tf_adapters.serving.client import grpc_request
from tf_adapters.serving.client import rest_body


@pytest.fixture(scope="module")
def signatures(tmp_path_factory):
    model = tiny_models.gpt2_causal_lm()
    path = export_saved_model(
        model, str(tmp_path_factory.mktemp("srv")), "lm", text=False
    )
    return tf.saved_model.load(path).signatures


INPUTS = {
    "token_ids": np.array([[3, 5, 7], [4, 6, 0]]),
    "padding_mask": np.array([[1, 1, 1], [1, 1, 0]]),
    "max_new_tokens": 2,
}


def _spec(signature):
    return signature.structured_input_signature[1]


def test_grpc_request_matches_the_loaded_signature(signatures):
    signature = signatures["generate_ids"]
    request = grpc_request("lm", INPUTS, "generate_ids", version=1)
    assert request.model_spec.version.value == 1
    spec = _spec(signature)
    assert set(request.inputs) == set(spec)
    for name, proto in request.inputs.items():
        value = tf.make_ndarray(proto)
        assert tf.as_dtype(proto.dtype) == spec[name].dtype, name
        assert spec[name].shape.is_compatible_with(value.shape), name
    # The decoded request runs the signature as TF Serving would.
    out = signature(
        **{
            k: tf.constant(tf.make_ndarray(v))
            for k, v in request.inputs.items()
        }
    )
    assert out["token_ids"].shape[0] == 2


def test_rest_bodies_match_the_loaded_signature(signatures):
    spec = _spec(signatures["logits"])
    batched = {k: v for k, v in INPUTS.items() if k != "max_new_tokens"}
    rows = rest_body(batched, "logits")["instances"]
    assert len(rows) == 2 and set(rows[0]) == set(spec)
    assert rows[1]["padding_mask"] == [1, 1, 0]
    columns = rest_body(INPUTS, "generate_ids", form="inputs")["inputs"]
    assert set(columns) == set(_spec(signatures["generate_ids"]))
    assert columns["max_new_tokens"] == 2
    with pytest.raises(ValueError, match="'max_new_tokens' is a scalar"):
        rest_body(INPUTS, "generate_ids")
    assert rest_body({"prompts": [b"caf\xc3\xa9"]})["instances"] == [
        {"prompts": "café"}
    ]


def test_decoding_responses():
    rows = {"predictions": [{"outputs": "a"}, {"outputs": "b"}]}
    assert decode_rest_response(rows)["outputs"].tolist() == ["a", "b"]
    cols = {"outputs": {"logits": [[0.5, 1.5]]}}
    assert decode_rest_response(cols)["logits"].shape == (1, 2)
    with pytest.raises(ValueError, match="Not a TF Serving predict response"):
        decode_rest_response({"error": "x"})

    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    response.outputs["outputs"].CopyFrom(tf.make_tensor_proto([b"hi"]))
    assert decode_grpc_response(response)["outputs"].tolist() == [b"hi"]
