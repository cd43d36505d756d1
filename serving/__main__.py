"""python -m serving: a drop-in for tensorflow_model_server (same flags; see --help)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving.server import serve

if __name__ == "__main__":
    code = serve(sys.argv[1:])
    # Exit now, as tensorflow_model_server does: a model load still running in a loader thread (it
    # cannot be interrupted) must not hold the process past the shutdown it was asked for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
