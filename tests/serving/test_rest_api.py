"""TF Serving's REST API, against both backends."""

import base64
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

import modelbase
from release import model_config
from tests.serving.conftest import copy_base, start

ROW = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
    "year": 2007,
}
MONITORING = 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n'


@pytest.fixture(scope="module")
def server(backend, exported, tmp_path_factory):
    base = copy_base(
        exported, tmp_path_factory.mktemp("base"), {"penguins": [1, 2], "penguins_body_mass": [1], "tf1": [1]}
    )
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1}}))
    (base / "monitoring.config").write_text(MONITORING)
    s = start(
        backend,
        [f"--model_config_file={base / 'models.config'}", f"--monitoring_config_file={base / 'monitoring.config'}"],
        base,
        tmp_path_factory.mktemp("logs"),
    )
    yield s
    s.stop()


def call(server, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(server.rest + path, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_predict_rows_and_columns(server):
    code, out = call(server, "/v1/models/penguins:predict", {"instances": [ROW, ROW]})
    assert code == 200 and len(out["predictions"]) == 2
    first = out["predictions"][0]
    assert set(first) == {"probabilities", "class_ids", "classes"} and first["classes"] == "Adelie"
    cols = {k: [v] for k, v in ROW.items()}
    code, out = call(server, "/v1/models/penguins/versions/1:predict", {"inputs": cols})
    assert code == 200 and out["outputs"]["classes"] == ["Adelie"]
    assert len(out["outputs"]["probabilities"][0]) == 3


def test_predict_by_label_and_single_output_model(server):
    code, out = call(server, "/v1/models/penguins/labels/stable:predict", {"instances": [ROW]})
    assert code == 200
    code, out = call(server, "/v1/models/tf1:predict", {"instances": [1.0, 4.0]})
    assert code == 200 and out == {"predictions": [2.5, 4.0]}  # a single output is answered without its name


def test_b64_binary_values(server):
    row = dict(ROW, island={"b64": base64.b64encode(b"Torgersen").decode()})
    code, out = call(server, "/v1/models/penguins:predict", {"instances": [row]})
    assert code == 200 and out["predictions"][0]["classes"] == "Adelie"


def test_classify_and_regress(server):
    code, out = call(server, "/v1/models/penguins:classify", {"signature_name": "classification", "examples": [ROW]})
    assert code == 200
    (result,) = out["results"]
    assert [label for label, _ in result] == ["Adelie", "Chinstrap", "Gentoo"]
    code, out = call(
        server,
        "/v1/models/penguins_body_mass:regress",
        {
            "signature_name": "regression",
            "context": {"island": "Biscoe"},
            "examples": [
                {
                    "species": "Gentoo",
                    "sex": "male",
                    "bill_length_mm": 50.0,
                    "bill_depth_mm": 15.0,
                    "flipper_length_mm": 225.0,
                }
            ],
        },
    )
    assert code == 200 and 3000 < out["results"][0] < 7000


def test_paths_are_decoded_and_matched_as_tf_serving_does(server):
    code, out = call(server, "/v1/models/pengu%69ns:predict", {"instances": [ROW]})  # percent-encoded name
    assert code == 200 and out["predictions"][0]["classes"] == "Adelie"
    code, out = call(server, "/V1/MODELS/penguins/LABELS/stable:PREDICT", {"instances": [ROW]})  # case-insensitive
    assert code == 200
    for label in ("st%61ble", "nope"):  # TF Serving's status reads a version number, never a label: every version
        code, out = call(server, f"/v1/models/penguins/labels/{label}")
        assert code == 200 and [s["version"] for s in out["model_version_status"]] == ["2", "1"]
    assert call(server, "/v1/models")[0] == 400  # "Missing model name in request."
    assert call(server, "/v2/models/penguins")[0] == 404


def test_metadata_prints_every_signature_field_as_tf_serving_does(server):
    code, out = call(server, "/v1/models/penguins/metadata")
    assert code == 200
    default = out["metadata"]["signature_def"]["signature_def"]["serving_default"]
    island = default["inputs"]["island"]
    assert island["name"] and island["tensor_shape"]["unknown_rank"] is False  # defaults printed
    assert "defaults" in default and default["defaults"] == {}
    assert out["model_spec"]["signature_name"] == ""


def test_status_and_metadata(server):
    code, out = call(server, "/v1/models/penguins")
    assert code == 200
    assert sorted((s["version"], s["state"]) for s in out["model_version_status"]) == [
        ("1", "AVAILABLE"),
        ("2", "AVAILABLE"),
    ]
    code, out = call(server, "/v1/models/penguins/versions/1")
    assert [s["version"] for s in out["model_version_status"]] == ["1"]
    code, out = call(server, "/v1/models/penguins/metadata")
    assert code == 200 and out["model_spec"]["version"] == "2"
    sigs = out["metadata"]["signature_def"]["signature_def"]
    assert sigs["classification"]["method_name"] == "tensorflow/serving/classify"
    assert sigs["serving_default"]["inputs"]["island"]["dtype"] == "DT_STRING"


BAD = {
    "malformed JSON": ("/v1/models/penguins:predict", None, b"{not json", 400),
    "both instances and inputs": ("/v1/models/penguins:predict", {"instances": [ROW], "inputs": {}}, None, 400),
    "neither": ("/v1/models/penguins:predict", {"signature_name": ""}, None, 400),
    "bad base64": ("/v1/models/penguins:predict", {"instances": [dict(ROW, island={"b64": "%%%"})]}, None, 400),
    "wrong type": ("/v1/models/penguins:predict", {"instances": [dict(ROW, year="2007")]}, None, 400),
    "unknown input": ("/v1/models/penguins:predict", {"instances": [dict(ROW, beak=1.0)]}, None, 400),
    "missing input": (
        "/v1/models/penguins:predict",
        {"instances": [{k: v for k, v in ROW.items() if k != "sex"}]},
        None,
        400,
    ),
    "ragged": (
        "/v1/models/penguins:predict",
        {"inputs": dict({k: [v] for k, v in ROW.items()}, bill_length_mm=[[1.0], 2.0])},
        None,
        400,
    ),
    "unknown model": ("/v1/models/walrus:predict", {"instances": [ROW]}, None, 404),
    "unknown version": ("/v1/models/penguins/versions/9:predict", {"instances": [ROW]}, None, 404),
    "unknown label": ("/v1/models/penguins/labels/gold:predict", {"instances": [ROW]}, None, 404),
    "unknown signature": ("/v1/models/penguins:predict", {"signature_name": "nope", "instances": [ROW]}, None, 400),
    "unknown verb": ("/v1/models/penguins:explain", {"instances": [ROW]}, None, 400),  # "Malformed request"
    "negative version": ("/v1/models/penguins/versions/-1:predict", {"instances": [ROW]}, None, 400),
    "version beyond int64": (
        "/v1/models/penguins/versions/99999999999999999999:predict",
        {"instances": [ROW]},
        None,
        400,
    ),
    "shape the graph refuses": (
        "/v1/models/penguins:predict",
        {"inputs": dict({k: [v] for k, v in ROW.items()}, bill_length_mm=[[1.0, 2.0]])},
        None,
        400,
    ),
    "empty instances": ("/v1/models/penguins:predict", {"instances": []}, None, 400),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_get_tf_serving_error_json_and_codes(server, case):
    path, body, raw, code = BAD[case]
    got, out = call(server, path, body, raw)
    assert got == code, out
    assert set(out) == {"error"} and out["error"]
    assert call(server, "/v1/models/penguins:predict", {"instances": [ROW]})[0] == 200


def test_prometheus_metrics_on_the_rest_port(server):
    call(server, "/v1/models/penguins:predict", {"instances": [ROW]})
    with urllib.request.urlopen(server.rest + "/monitoring/prometheus/metrics", timeout=30) as r:
        text = r.read().decode()
    assert ":tensorflow:serving:request_count" in text
    if server.kind == "local":  # names we add beyond what every TF Serving build reports
        assert 'model_name="penguins",status="OK"' in text
        assert ":tensorflow:cc:saved_model:load_attempt_count" in text
        assert ":tensorflow:serving:request_latency_bucket" in text


def _scrape(server) -> dict[str, float]:
    with urllib.request.urlopen(server.rest + "/monitoring/prometheus/metrics", timeout=30) as r:
        lines = r.read().decode().splitlines()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))}


def test_metrics_tell_versions_apart(server):
    if server.kind != "local":
        pytest.skip("the per-version metrics are the local server's own, not the official image's")
    from shipyard_client import Client

    before = _scrape(server)
    for _ in range(3):
        assert call(server, "/v1/models/penguins/labels/stable:predict", {"instances": [ROW]})[0] == 200
    assert call(server, "/v1/models/penguins/versions/2:predict", {"instances": [ROW]})[0] == 200
    assert call(server, "/v1/models/penguins/labels/nope:predict", {"instances": [ROW]})[0] == 404
    with Client(server.target, timeout=30, cast=False) as c:  # no metadata call: one request, one count
        feeds = {k: np.array([v], dtype=np.float32 if isinstance(v, float) else None) for k, v in ROW.items()}
        c.predict("penguins", feeds, version=2)
    after = _scrape(server)

    def delta(version: str, status: str) -> float:
        key = f':shipyard:serving:request_count{{model_name="penguins",version="{version}",status="{status}"}}'
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("1", "OK") == 3 and delta("2", "OK") == 2 and delta("none", "NOT_FOUND") == 1
    grpc_latency = (
        ':shipyard:serving:request_latency_count{model_name="penguins",version="2",API="predict",entrypoint="GRPC"}'
    )
    assert after[grpc_latency] - before.get(grpc_latency, 0.0) >= 1
    tf_name = ':tensorflow:serving:request_count{model_name="penguins",status="OK"}'
    assert after[tf_name] - before.get(tf_name, 0.0) >= 5  # TF Serving's own metric is unchanged
