"""make shadow-demo: the demo's two published versions labelled stable and canary on the local server,
the held-out penguins sent through ShadowClient (answers from stable, canary recorded), then the report.

    python scripts/shadow_demo.py [--demo artifacts/demo]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--demo", default="artifacts/demo", type=Path)
    args = p.parse_args()
    models = args.demo / "models"
    runs = sorted((args.demo / "runs").glob("2*"))
    if not (models / "penguins" / "2").is_dir() or not runs:
        print("the demo has not published two versions: run `make demo` first", file=sys.stderr)
        return 2
    import modelbase
    from monitor.shadow_report import plot, report_from
    from serving import model_config
    from shipyard_client import Client, Endpoint, ShadowClient, SQLiteSink
    from train.run import load_run_inputs, split_rows

    modelbase.write_config(models, model_config.build(models, {"penguins": {"stable": 1, "canary": 2}}))
    print(f"$ {models / 'models.config'}: stable -> 1, canary -> 2")
    port = free_port()
    with open(args.demo / "shadow-server.log", "wb") as log:  # the child keeps its own copy of the handle
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                f"--port={port}",
                "--bind_address=127.0.0.1",
                f"--model_config_file={models / 'models.config'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    db = args.demo / "shadow.db"
    db.unlink(missing_ok=True)
    try:
        with Client(f"127.0.0.1:{port}", validate=True) as client:
            client.wait_until_ready("penguins", timeout=300)
            _, spec, cols, key = load_run_inputs(runs[-1])
            test = split_rows(spec, cols, key)["test"]
            sc = ShadowClient(
                Endpoint(client, "penguins", label="stable"),
                Endpoint(client, "penguins", label="canary"),
                SQLiteSink(db),
            )
            for i in range(len(test[key])):
                row = {f.name: test[f.name][i : i + 1] for f in spec.features}
                answer = sc.predict(row)
                assert answer.version == 1  # the caller always gets stable's answer
            sc.close()
            print(
                f"sent {len(test[key])} held-out penguins through ShadowClient: {sc.sampled} shadowed, "
                f"{sc.dropped} dropped, {sc.shadow_errors} shadow errors; log: {db}"
            )
    finally:
        server.terminate()
        server.wait(60)
    rep = report_from(db, ["Adelie", "Chinstrap", "Gentoo"])
    out = args.demo / "monitor"
    out.mkdir(parents=True, exist_ok=True)
    plot(rep, out / "shadow_report.png")
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "monitor",
            "shadow-report",
            "--db",
            str(db),
            "--classes",
            "Adelie,Chinstrap,Gentoo",
            "--out",
            str(out),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
