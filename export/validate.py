"""Validation before publishing: load the written SavedModel in a fresh process the way TF Serving
does (session-based load of the `serve` MetaGraph, signatures run by tensor name, warmup replayed),
run the test rows through Predict and Classify/Regress, and compare with the Keras model's own
predictions.

    python -m export.validate SAVED_MODEL_DIR CASES.npz     # prints a JSON report; exit 0 iff it passes

CASES.npz holds `predict__<input>` arrays, `examples` (serialized tf.Example), and the expected
`expected` array (probabilities [n, k] or predictions [n]), and `task`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-5


def compare_paths(saved_model_dir: Path, cases: dict[str, np.ndarray]) -> dict[str, Any]:
    from serving.servable import Servable
    from serving.warmup import replay

    servable = Servable.load("validate", 0, saved_model_dir)
    try:
        warmup = replay(servable)
        task = str(cases["task"])
        expected = cases["expected"]
        feeds = {k.removeprefix("predict__"): v for k, v in cases.items() if k.startswith("predict__")}
        pred = servable.run("serving_default", feeds)
        diffs: dict[str, float] = {}
        if task == "classification":
            diffs["predict.probabilities"] = float(np.max(np.abs(pred["probabilities"] - expected)))
            cls = servable.run("classification", {"inputs": cases["examples"]})
            diffs["classify.scores"] = float(np.max(np.abs(cls["scores"] - expected)))
            ids_agree = bool((pred["class_ids"] == expected.argmax(axis=1)).all())
        else:
            diffs["predict.predictions"] = float(np.max(np.abs(pred["predictions"] - expected.reshape(-1))))
            reg = servable.run("regression", {"inputs": cases["examples"]})
            diffs["regress.outputs"] = float(np.max(np.abs(reg["outputs"] - expected.reshape(-1))))
            ids_agree = True
        # Regression outputs are in the label's units (grams): compare relative to their scale.
        scale = max(1.0, float(np.max(np.abs(expected)))) if task == "regression" else 1.0
        ok = all(d <= TOLERANCE * scale for d in diffs.values()) and ids_agree
        return {
            "ok": ok,
            "rows": len(expected),
            "warmup_records": warmup,
            "max_abs_diff": diffs,
            "tolerance": TOLERANCE * scale,
            "class_ids_agree": ids_agree,
            "signatures": sorted(servable.signatures),
        }
    finally:
        servable.close()


def validate_in_fresh_process(saved_model_dir: Path, cases_path: Path, timeout: float = 600) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run(
        [sys.executable, "-m", "export.validate", str(saved_model_dir), str(cases_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    try:
        report = json.loads(r.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"ok": False, "error": f"the validator exited {r.returncode}: {' | '.join(tail)}"}
    return report


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with np.load(args[1], allow_pickle=True) as z:
        cases = {k: z[k] for k in z.files}
    try:
        report = compare_paths(Path(args[0]), cases)
    except Exception as e:  # noqa: BLE001 - any failure is a failed validation, reported as such
        report = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
