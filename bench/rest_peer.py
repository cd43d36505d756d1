"""The peer the serving benchmark compares against: what a team would write in an afternoon instead of
running a model server. A FastAPI app under uvicorn (one worker) that loads the SavedModel once with
`tf.saved_model.load` and calls `signatures["serving_default"]` per request, taking TF Serving's row
format (`{"instances": [{...}, ...]}`) and answering `{"predictions": [...]}`.

    python -m bench.rest_peer SAVED_MODEL_DIR PORT
"""

from __future__ import annotations

import os
import sys
from typing import Any


def app_for(saved_model_dir: str) -> Any:
    import numpy as np
    import tensorflow as tf
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    model = tf.saved_model.load(saved_model_dir)
    fn = model.signatures["serving_default"]
    specs = fn.structured_input_signature[1]  # input name -> TensorSpec
    app = FastAPI()

    # A plain `def`: FastAPI runs it on its thread pool, so requests overlap while TensorFlow computes.
    @app.post("/v1/models/{name}:predict")
    def predict(name: str, body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 - FastAPI's idiom
        rows = body["instances"]
        feeds = {
            k: tf.constant(
                [r[k].encode() if isinstance(r[k], str) else r[k] for r in rows],
                dtype=spec.dtype,
            )
            for k, spec in specs.items()
        }
        out = fn(**feeds)
        cols = {
            k: (np.char.decode(v.numpy().astype(bytes)) if v.dtype == tf.string else v.numpy()).tolist()
            for k, v in out.items()
        }
        return JSONResponse({"predictions": [{k: cols[k][i] for k in cols} for i in range(len(rows))]})

    return app


def main() -> int:
    import uvicorn

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved_model_dir, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app_for(saved_model_dir), host="127.0.0.1", port=port, workers=1, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
