"""The SDK against the local server (real processes on free loopback ports)."""

import asyncio
import threading
import time

import numpy as np
import pandas as pd
import pytest

import modelbase
from release import model_config
from shipyard_client import (
    AsyncClient,
    Client,
    FailedPreconditionError,
    InvalidInputError,
    ModelNotFoundError,
    RetryPolicy,
    UnavailableError,
)
from tests.conftest import copy_base
from tests.fixtures.servers import free_port, start_local

ROW = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
    "year": 2007,
}


def inputs(rows):
    out = {}
    for k, v in ROW.items():
        values = [r[k] for r in rows]
        out[k] = np.array(values, dtype=object if isinstance(v, str) else np.int64 if k == "year" else np.float32)
    return out


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    base = copy_base(exported, tmp_path_factory.mktemp("base"), {"penguins": [1, 2], "penguins_body_mass": [1]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1}}))
    s = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path_factory.mktemp("logs"))
    yield s
    s.stop()


@pytest.fixture
def client(server):
    with Client(server.target, timeout=30) as c:
        yield c


def test_predict_with_a_mapping(client):
    r = client.predict("penguins", inputs([ROW, dict(ROW, island="Biscoe", flipper_length_mm=230.0)]))
    assert r.version == 2 and r.model == "penguins" and r.signature == "serving_default"
    assert r["probabilities"].shape == (2, 3) and r["probabilities"].dtype == np.float32
    assert r["classes"].tolist()[0] == b"Adelie"
    assert set(r) == {"probabilities", "class_ids", "classes"}


def test_predict_with_a_dataframe_in_chunks(client):
    rows = [dict(ROW, bill_length_mm=35.0 + i) for i in range(25)]
    df = pd.DataFrame(rows).astype(
        {
            "bill_length_mm": "float32",
            "bill_depth_mm": "float32",
            "flipper_length_mm": "float32",
            "body_mass_g": "float32",
        }
    )
    whole = client.predict("penguins", df)
    chunked = client.predict("penguins", df, batch_size=7)
    np.testing.assert_array_equal(whole["probabilities"], chunked["probabilities"])
    assert chunked.versions == (2,)


def test_a_dataframe_of_pandas_defaults_goes_in_without_casts(client):
    df = pd.DataFrame([ROW, dict(ROW, bill_length_mm=50.5, year=2009)])  # float64, int64 and object columns
    assert df["bill_length_mm"].dtype == np.float64 and df["year"].dtype == np.int64
    r = client.predict("penguins", df)
    assert r["probabilities"].shape == (2, 3)
    exact = client.predict("penguins", inputs([ROW, dict(ROW, bill_length_mm=50.5, year=2009)]))
    np.testing.assert_allclose(r["probabilities"], exact["probabilities"], rtol=1e-6)


def test_a_lossy_cast_is_refused_naming_the_column(client):
    df = pd.DataFrame([dict(ROW, year=2007.5)])
    with pytest.raises(InvalidInputError, match=r"input 'year': 2007\.5 cannot become int64"):
        client.predict("penguins", df)


def test_string_outputs_are_the_same_type_from_predict_and_classify(server):
    for decode, kind in ((False, bytes), (True, str)):
        with Client(server.target, timeout=30, decode_strings=decode) as c:
            p = c.predict("penguins", inputs([ROW]))
            k = c.classify("penguins", [ROW])
        assert type(p["classes"][0]) is kind and type(k.labels[0][0]) is kind


def test_versions_labels_and_output_filter(client):
    assert client.predict("penguins", inputs([ROW]), version=1).version == 1
    assert client.predict("penguins", inputs([ROW]), label="stable").version == 1
    assert set(client.predict("penguins", inputs([ROW]), output_filter=["classes"])) == {"classes"}


def test_classify_and_regress(client):
    c = client.classify("penguins", [ROW, dict(ROW, island="Biscoe", flipper_length_mm=230.0, bill_depth_mm=14.0)])
    assert c.labels.shape == (2, 3) and c.labels[0].tolist() == [b"Adelie", b"Chinstrap", b"Gentoo"]
    assert np.allclose(c.scores.sum(axis=1), 1.0, atol=1e-5) and c.version == 2
    df = pd.DataFrame(
        [
            {
                "species": "Gentoo",
                "island": "Biscoe",
                "sex": "male",
                "bill_length_mm": 50.0,
                "bill_depth_mm": 15.0,
                "flipper_length_mm": 225.0,
            }
        ]
    )
    r = client.regress("penguins_body_mass", df)
    assert r.values.shape == (1,) and 3000 < r.values[0] < 7000


def test_metadata_and_status(client):
    meta = client.metadata_of("penguins", version=1)
    sig = meta.signatures["serving_default"]
    assert meta.version == 1 and sig.inputs["island"].dtype == "string" and sig.inputs["year"].dtype == "int64"
    assert sig.outputs["probabilities"].shape == (-1, 3)
    assert meta.signatures["classification"].method_name == "tensorflow/serving/classify"
    states = {s.version: s.state for s in client.status("penguins")}
    assert states == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert client.wait_until_ready("penguins", timeout=10).version == 2


def test_typed_errors(client):
    with pytest.raises(ModelNotFoundError) as e:
        client.predict("walrus", inputs([ROW]))
    assert e.value.model == "walrus" and "walrus" in e.value.message
    with pytest.raises(ModelNotFoundError):
        client.predict("penguins", inputs([ROW]), label="gold")
    with pytest.raises(FailedPreconditionError):
        client.predict("penguins", inputs([ROW]), signature="nope")
    bad = inputs([ROW])
    bad["year"] = bad["year"].astype(np.float32)
    raw = Client(client.target, timeout=30, cast=False)  # sent as it is: the server refuses it
    with raw, pytest.raises(InvalidInputError) as e:
        raw.predict("penguins", bad)
    assert "year" in e.value.message


def test_validation_fails_before_the_call(server):
    with Client(server.target, validate=True) as c:
        bad = inputs([ROW])
        del bad["sex"]
        with pytest.raises(InvalidInputError, match="missing input 'sex'"):
            c.predict("penguins", bad)
        bad = inputs([ROW])
        bad["year"] = np.array([2007.0])
        with pytest.raises(InvalidInputError, match=r"input 'year' has dtype float64; .* expects int64"):
            c.predict("penguins", bad)
        assert c.predict("penguins", inputs([ROW])).version == 2


def test_asyncio_under_concurrency(server):
    async def main():
        async with AsyncClient(server.target, timeout=60) as c:
            rows = [dict(ROW, bill_length_mm=35.0 + i % 20) for i in range(64)]
            results = await asyncio.gather(*(c.predict("penguins", inputs([r])) for r in rows))
            meta = await c.metadata_of("penguins")
            cls = await c.classify("penguins", rows[:3])
            return results, meta, cls

    results, meta, cls = asyncio.run(main())
    assert len(results) == 64 and all(r.version == 2 for r in results)
    with Client(server.target) as sync:
        expected = sync.predict("penguins", inputs([dict(ROW, bill_length_mm=35.0 + i % 20) for i in range(64)]))
    np.testing.assert_allclose(
        np.concatenate([r["probabilities"] for r in results]), expected["probabilities"], atol=1e-6
    )
    assert meta.version == 2 and cls.labels.shape == (3, 3)


def test_no_server_is_unavailable_after_bounded_retries():
    with Client(f"127.0.0.1:{free_port()}", retry=RetryPolicy(max_attempts=3, initial_backoff=0.05, deadline=5)) as c:
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            c.predict("penguins", inputs([ROW]), timeout=2)
        assert time.monotonic() - start < 15


def test_retries_ride_out_a_server_restart(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    flags = [f"--model_base_path={base / 'penguins'}", "--model_name=penguins"]
    first = start_local(flags, tmp_path)
    port = first.grpc_port
    c = Client(
        first.target,
        timeout=10,
        retry=RetryPolicy(max_attempts=100, initial_backoff=0.1, max_backoff=0.5, deadline=120),
    )
    try:
        assert c.predict("penguins", inputs([ROW])).version == 1
        first.stop()  # the server is gone ...
        restarted = {}

        def restart():
            import subprocess
            import sys

            from tests.conftest import ROOT

            with open(tmp_path / "second.log", "wb") as log:  # ... and comes back on the same port
                restarted["proc"] = subprocess.Popen(
                    [sys.executable, "-m", "serving", f"--port={port}", "--bind_address=127.0.0.1", *flags],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

        t = threading.Timer(1.0, restart)
        t.start()
        start = time.monotonic()
        r = c.predict("penguins", inputs([ROW]))  # UNAVAILABLE while it restarts: retried, not raised
        assert r.version == 1 and time.monotonic() - start > 1.0
        t.join()
    finally:
        c.close()
        proc = restarted.get("proc")
        if proc:
            proc.terminate()
            proc.wait(60)


def test_reload_config_through_the_sdk(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1], "penguins_body_mass": [1]})
    config = model_config.build(base, {})
    del config.model_config_list.config[1]
    modelbase.write_config(base, config)
    s = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    try:
        with Client(s.target) as c:
            with pytest.raises(ModelNotFoundError):
                c.status("penguins_body_mass")
            from google.protobuf import text_format

            c.reload_config(text_format.MessageToString(model_config.build(base, {})))
            assert c.wait_until_ready("penguins_body_mass", timeout=60).version == 1
    finally:
        s.stop()


def test_interceptors_see_every_call(server):
    import grpc

    seen = []

    class Tracing(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            seen.append(details.method)
            return continuation(details, request)

    with Client(server.target, interceptors=[Tracing()]) as c:
        c.predict("penguins", inputs([ROW]))
        c.predict("penguins", inputs([ROW]))
        c.status("penguins")
    assert seen == [
        "/tensorflow.serving.PredictionService/GetModelMetadata",  # once: the signature to cast numbers by
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.ModelService/GetModelStatus",
    ]
