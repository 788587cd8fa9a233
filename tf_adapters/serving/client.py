"""Building TF Serving requests and decoding responses.

REST bodies follow TF Serving's predict API in its two forms: row
(`{"instances": [...]}`, one object per example) and columnar
(`{"inputs": {...}}`). gRPC requests are `PredictRequest` protos from the
`tensorflow-serving-api` package.

Example:
>>> from tf_adapters.serving.client import rest_body
>>> body = rest_body({"prompts": ["Hi"], "max_new_tokens": 4}, form="inputs")
>>> body["inputs"]
{'prompts': ['Hi'], 'max_new_tokens': 4}
"""

import base64

import numpy as np


def _jsonable(value):
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        return np.vectorize(_text, otypes=[object])(value).tolist()
    return value.tolist()


def _text(item):
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(item).decode("ascii")}
    return item


def rest_body(inputs, signature_name="serving_default", form="instances"):
    """A TF Serving REST predict body.

    Args:
        inputs: dict of input name → value (batched along the first axis,
            except scalars such as `max_new_tokens`).
        signature_name: str. Defaults to `"serving_default"`.
        form: `"instances"` (row) or `"inputs"` (columnar). The row form
            needs every input batched; scalars use the columnar form.
    """
    if form == "inputs":
        body = {k: _jsonable(v) for k, v in inputs.items()}
        return {"signature_name": signature_name, "inputs": body}
    if form != "instances":
        raise ValueError(
            f"`form` must be 'instances' or 'inputs'. Received: {form!r}."
        )
    arrays = {k: np.asarray(v) for k, v in inputs.items()}
    scalars = [k for k, v in arrays.items() if v.ndim == 0]
    if scalars:
        raise ValueError(
            f"Input {scalars[0]!r} is a scalar; the 'instances' form needs "
            "every input batched. Use form='inputs'."
        )
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(
            "Every input needs the same batch size in the 'instances' form. "
            f"Received sizes {sorted(sizes)}."
        )
    rows = [
        {k: _jsonable(v[i]) for k, v in arrays.items()}
        for i in range(sizes.pop())
    ]
    return {"signature_name": signature_name, "instances": rows}


def decode_rest_response(body):
    """`{output name: np.ndarray}` from a REST predict response body."""
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict):
            return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
        return {"output": np.asarray(rows)}
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict):
            return {k: np.asarray(v) for k, v in outputs.items()}
        return {"output": np.asarray(outputs)}
    raise ValueError(f"Not a TF Serving predict response: keys {sorted(body)}.")


def grpc_request(
    model_name,
    inputs,
    signature_name="serving_default",
    version=None,
    dtypes=None,
):
    """A `PredictRequest` proto (needs `pip install tensorflow-serving-api`).

    Args:
        model_name: str. The served model's name.
        inputs: dict of input name → value.
        signature_name: str. Defaults to `"serving_default"`.
        version: int. A model version; defaults to the server's latest.
        dtypes: dict of input name → dtype (e.g. `"int32"`). Defaults to
            int32 for integers, float32 for floats, string for text.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        dtype = (dtypes or {}).get(name) or _default_dtype(value)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def _default_dtype(value):
    kind = np.asarray(value).dtype.kind
    return {"i": "int32", "u": "int32", "f": "float32", "b": "bool"}.get(
        kind, "string"
    )


def decode_grpc_response(response):
    """`{output name: np.ndarray}` from a `PredictResponse`."""
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
