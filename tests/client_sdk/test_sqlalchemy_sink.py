import sqlite3
import time

from shipyard_client import SQLAlchemySink
from shipyard_client.sinks import read_records


def test_sqlalchemy_sink_writes_batches_and_purges(tmp_path):
    url = f"sqlite:///{tmp_path / 'shadow.db'}"
    with SQLAlchemySink(url, batch_size=2, allowlist=["x"]) as sink:
        for i in range(5):
            sink.write(
                {
                    "request_id": str(i),
                    "time": time.time(),
                    "method": "predict",
                    "inputs": {"x": i, "y": 0},
                    "primary_outputs": {"p": [i]},
                    "shadow_outputs": {"p": [i + 1]},
                    "primary_ms": 1.0,
                    "shadow_ms": 2.0,
                }
            )
        sink.write({"request_id": "old", "time": time.time() - 30 * 86400, "inputs": {"x": 9}})
    recs = list(read_records(tmp_path / "shadow.db"))  # the same table layout as SQLiteSink
    assert len(recs) == 6 and recs[-1]["inputs"] == {"x": 4} and recs[-1]["shadow_outputs"] == {"p": [5]}
    with SQLAlchemySink(url, retention_days=7):
        pass
    with sqlite3.connect(tmp_path / "shadow.db") as db:
        assert db.execute("SELECT COUNT(*) FROM shadow_log WHERE request_id = 'old'").fetchone() == (0,)
