"""python -m serving: a drop-in for tensorflow_model_server (same flags; see --help)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving.server import serve

if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
