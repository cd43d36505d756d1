"""The parts of the client that need no server: errors, retries, examples, inputs, validation, and that
importing the SDK does not import TensorFlow."""

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest

from shipyard_client import (
    NO_RETRY,
    InvalidInputError,
    ModelNotFoundError,
    RetryPolicy,
    ServerError,
    Signature,
    TensorSpec,
)
from shipyard_client import _base as b
from shipyard_client._errors import error_for
from shipyard_client._examples import to_examples


def test_error_types_by_code():
    assert isinstance(error_for(grpc.StatusCode.NOT_FOUND, "x", "m"), ModelNotFoundError)
    assert isinstance(error_for(grpc.StatusCode.INVALID_ARGUMENT, "x"), InvalidInputError)
    e = error_for(grpc.StatusCode.DATA_LOSS, "bad", "m", version=3)
    assert isinstance(e, ServerError) and e.code == grpc.StatusCode.DATA_LOSS and e.version == 3
    assert str(e) == "DATA_LOSS: bad (model m v3)"


def test_retry_policy_backoff_and_service_config():
    p = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=0.3, multiplier=2.0, jitter=False)
    assert list(p.delays()) == [0.1, 0.2, 0.3, 0.3]
    jittered = list(RetryPolicy(max_attempts=50, initial_backoff=1.0, max_backoff=1.0).delays())
    assert all(0 <= d <= 1.0 for d in jittered) and len(set(jittered)) > 1
    cfg = json.loads(RetryPolicy(max_attempts=20).service_config_json())
    policy = cfg["methodConfig"][0]["retryPolicy"]
    assert policy["maxAttempts"] == 5 and policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {"service": "tensorflow.serving.PredictionService"} in cfg["methodConfig"][0]["name"]


def test_examples_from_rows():
    (ex,) = to_examples(
        [{"f": 1.5, "i": 2, "s": "a", "b": b"\x00", "l": [1.0, 2.0], "nan": float("nan"), "none": None, "flag": True}]
    )
    f = ex.features.feature
    assert set(f) == {"f", "i", "s", "b", "l", "flag"}
    assert list(f["f"].float_list.value) == [1.5] and list(f["i"].int64_list.value) == [2]
    assert list(f["s"].bytes_list.value) == [b"a"] and list(f["l"].float_list.value) == [1.0, 2.0]
    assert list(f["flag"].int64_list.value) == [1]


def test_examples_from_a_dataframe():
    pd = pytest.importorskip("pandas", reason="the pandas extra is not installed")
    df = pd.DataFrame({"x": [1.0, np.nan], "s": ["a", None]})
    a, c = to_examples(df)
    assert set(a.features.feature) == {"x", "s"} and set(c.features.feature) == set()


def test_inputs_from_mappings_and_dataframes():
    got = b.normalize_inputs({"a": [1.0, 2.0], "s": ["x", "y"]})
    assert got["a"].dtype == np.float64 and got["s"].dtype.kind == "U"
    with pytest.raises(TypeError, match="mapping"):
        b.normalize_inputs([1, 2])
    pd = pytest.importorskip("pandas", reason="the pandas extra is not installed")
    df = pd.DataFrame({"a": np.array([1.0, 2.0], np.float32), "s": ["x", "y"], "n": np.array([1, 2], np.int64)})
    got = b.normalize_inputs(df)
    assert got["a"].dtype == np.float32 and got["n"].dtype == np.int64 and got["s"].dtype == object


def test_chunks_keep_order():
    parts = b.chunks({"a": np.arange(5)}, 2)
    assert [p["a"].tolist() for p in parts] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="same number of rows"):
        b.chunks({"a": np.arange(5), "b": np.arange(4)}, 2)


def test_validation_names_the_feature():
    sig = Signature(
        "serving_default",
        "tensorflow/serving/predict",
        {"x": TensorSpec("x", "float32", (-1,)), "s": TensorSpec("s", "string", (-1,))},
    )
    t = b.Target("m")
    b.validate({"x": np.zeros(2, np.float32), "s": np.array(["a", "b"])}, sig, t)
    with pytest.raises(InvalidInputError, match="missing input 's'"):
        b.validate({"x": np.zeros(2, np.float32)}, sig, t)
    with pytest.raises(InvalidInputError, match="unknown input 'y'"):
        b.validate({"x": np.zeros(2, np.float32), "s": np.array(["a"]), "y": np.zeros(1)}, sig, t)
    cast = b.validate({"x": np.zeros(2), "s": np.array(["a"])}, sig, t)  # float64 -> float32: same kind
    assert cast["x"].dtype == np.float32
    with pytest.raises(InvalidInputError, match=r"input 'x' has dtype string; .* expects float32"):
        b.validate({"x": np.array(["1.0"]), "s": np.array(["a"])}, sig, t)


def test_version_and_label_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        b.Target("m", version=1, label="stable").spec(b.sp.ModelSpec())


def test_importing_the_sdk_does_not_import_tensorflow():
    code = (
        "import sys, shipyard_client; print(any(m.split('.')[0] in ('tensorflow', 'tensorflow_serving') "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_both_clients_take_the_same_arguments():
    import inspect

    from shipyard_client import AsyncClient, Client

    assert inspect.signature(AsyncClient) == inspect.signature(Client)
    assert "root_certificates" in inspect.signature(AsyncClient).parameters


def test_a_closed_client_refuses_calls():
    from shipyard_client import Client

    c = Client("127.0.0.1:1", timeout=1, retry=NO_RETRY)
    c.close()
    assert c.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        c.status("m")
    with pytest.raises(RuntimeError, match="closed"), c:
        pass
    c.close()  # twice is harmless


def test_a_closed_async_client_refuses_calls():
    import asyncio

    from shipyard_client import AsyncClient

    async def go():
        c = AsyncClient("127.0.0.1:1", timeout=1, retry=NO_RETRY)
        await c.close()
        with pytest.raises(RuntimeError, match="closed"):
            await c.predict("m", {"x": [1.0]})

    asyncio.run(go())


def test_use_client_default_takes_the_clients_timeout_and_none_means_no_deadline():
    from shipyard_client import USE_CLIENT_DEFAULT, Client

    with Client("127.0.0.1:1", timeout=2.5) as c:
        assert c._timeout(USE_CLIENT_DEFAULT) == 2.5
        assert c._timeout(None) is None
        assert c._timeout(0.5) == 0.5
    assert repr(USE_CLIENT_DEFAULT) == "USE_CLIENT_DEFAULT"


def test_tls_arguments_make_a_secure_channel_on_both_clients(monkeypatch):
    import asyncio

    from shipyard_client import AsyncClient, Client

    made = []
    real = grpc.ssl_channel_credentials

    def spy(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(grpc, "ssl_channel_credentials", spy)
    Client("127.0.0.1:1", root_certificates=None, certificate_chain=b"chain", private_key=b"key").close()

    async def go():
        await AsyncClient("127.0.0.1:1", certificate_chain=b"chain", private_key=b"key").close()

    asyncio.run(go())
    assert made == [(None, b"key", b"chain"), (None, b"key", b"chain")]
