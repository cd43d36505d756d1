"""What the CLIs of train, export and monitor show on the terminal.

TensorFlow's C++ start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN,
CUDA probing, CPU instruction notes) kept off a CLI's terminal.

TF 2.21 prints them from C++ while it loads and while it first looks for devices, before
`TF_CPP_MIN_LOG_LEVEL` takes effect, so they cannot be turned off by the environment alone. The CLIs
of train, export and monitor import TensorFlow and probe the devices inside `start_up_quiet()`, which
points file descriptor 2 at a temporary file meanwhile and then passes on every line that is not one of
those start-up notes. With `-v` the CLIs skip this and everything is shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

START_UP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas"
    r"|cpu_feature_guard|gpu_device|computation_placer)\.cc:\d+\] .*"
    r"|To enable the following instructions: .*)$"
)


def is_start_up_line(line: str) -> bool:
    """
    >>> is_start_up_line("I0000 00:00:1796428755.605153   30602 port.cc:153] oneDNN custom operations are on.")
    True
    >>> is_start_up_line("train: error: spec: unknown key 'x'")
    False
    """
    return bool(START_UP.match(line))


@contextlib.contextmanager
def start_up_quiet(enabled: bool = True) -> Iterator[None]:
    """Within the block, whatever reaches file descriptor 2 is held back and, at its end, passed on
    without TensorFlow's start-up lines."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode("utf-8", "replace").splitlines():
                if not is_start_up_line(line):
                    sys.stderr.write(line + "\n")
            sys.stderr.flush()


def import_tensorflow(quiet: bool = True) -> None:
    """Import TensorFlow and Keras and probe the devices, with the start-up lines held back if `quiet`."""
    with start_up_quiet(quiet):
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def unexpected_error(prog: str, error: BaseException, verbose: bool, code: int) -> int:
    """An error no documented outcome covers: one line (the traceback with -v), and its own exit code."""
    import logging

    if verbose:
        logging.getLogger(prog).error("unexpected error", exc_info=error)
    print(f"{prog}: unexpected error: {type(error).__name__}: {error} (-v shows the traceback)", file=sys.stderr)
    return code
