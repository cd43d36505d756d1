"""The session-based loader (the one export validates with and serving serves with) on a TF1-era
SavedModel, in a fresh process."""

import json
import sys

import pytest

from tests.conftest import ROOT
from tests.fixtures.tf1_models import build_tf1_model

PROBE = r"""
import json, sys
import numpy as np
import tensorflow as tf
from serving.servable import Servable
s = Servable.load("tf1", 1, sys.argv[1])
ex = np.array([tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(
    float_list=tf.train.FloatList(value=[v]))})).SerializeToString() for v in (1.0, 4.0)], dtype=object)
out = {
    "signatures": sorted(s.signatures),
    "predict": s.run("serving_default", {"x": np.array([1.0, 4.0], np.float32)})["y"].tolist(),
    "reference": float(s.run("with_reference", {"x": np.array([0.0], np.float32)})["a"]),
    "classes": [[c.decode() for c in row] for row in s.run("classify_x", {"inputs": ex})["classes"]],
    "scores": s.run("classify_x", {"inputs": ex})["scores"].tolist(),
    "regress": s.run("regress_x", {"inputs": ex})["outputs"].ravel().tolist(),
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tf1_model(tmp_path_factory):
    return build_tf1_model(tmp_path_factory.mktemp("tf1") / "1")


def test_tf2_loader_cannot_load_it(tf1_model):
    """The fixture is a real TF1 model: the TF2 object loader refuses its reference-typed output."""
    import tensorflow as tf

    with pytest.raises(Exception, match="reference type"):
        tf.saved_model.load(str(tf1_model))


def test_session_loader_serves_every_signature_in_a_fresh_process(tf1_model):
    import subprocess

    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(tf1_model)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["signatures"] == ["classify_x", "regress_x", "serving_default", "with_reference"]
    assert out["predict"] == [2.5, 4.0]
    assert out["reference"] == 0.5
    assert out["classes"] == [["low", "high"], ["low", "high"]]  # read from the SavedModel's asset
    assert out["scores"] == [[1.0, 0.0], [0.0, 1.0]]
    assert out["regress"] == [2.5, 4.0]
