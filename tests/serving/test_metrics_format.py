"""The Prometheus exposition is written by hand (serving/metrics.py): prometheus_client would append
`_total` to counters and add `_created` samples, where TF Serving writes `# TYPE <name> counter` and
the samples under the bare name. These pin the text against the format TF Serving's exporter writes
(tensorflow_serving/util/prometheus_exporter.cc): counters, histograms with cumulative `le` buckets
ending in "+Inf" then `_sum` and `_count`, and escaped label values."""

from serving.metrics import Metrics


def _block(text: str, name: str) -> str:
    """The `# TYPE` line of `name` and its samples (TF Serving writes no `# HELP`; ours precedes `# TYPE`)."""
    lines = text.splitlines()
    start = lines.index(f"# TYPE {name} {'histogram' if 'histogram' in name else 'counter'}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def test_a_counter_is_its_bare_name():
    m = Metrics()
    m._count(":test:path:total", "A counter.", (("name", "abc"),), by=2)
    text = m.render()
    assert text == (
        '# HELP :test:path:total A counter.\n# TYPE :test:path:total counter\n:test:path:total{name="abc"} 2\n'
    )
    assert "_total_total" not in text and "_created" not in text


def test_a_histogram_has_cumulative_buckets_then_sum_and_count():
    m = Metrics()
    buckets = [2.0**i for i in range(10)]  # 1, 2, 4, ..., 512
    for v in (2, 20, 200):
        m._observe(":test:path:histogram", "A histogram.", (("status", "good"),), v, buckets)
    expected = [
        "# TYPE :test:path:histogram histogram",
        *(
            f':test:path:histogram_bucket{{status="good",le="{le}"}} {n}'
            for le, n in [(1, 0), (2, 0), (4, 1), (8, 1), (16, 1), (32, 2), (64, 2), (128, 2), (256, 3), (512, 3)]
        ),
        ':test:path:histogram_bucket{status="good",le="+Inf"} 3',
        ':test:path:histogram_sum{status="good"} 222',
        ':test:path:histogram_count{status="good"} 3',
    ]
    assert _block(m.render(), ":test:path:histogram") == "\n".join(expected) + "\n"


def test_label_values_are_escaped():
    m = Metrics()
    m._count(":test:path:total", "A counter.", (("name", '"abc\\"'),), by=2)
    assert _block(m.render(), ":test:path:total") == (
        '# TYPE :test:path:total counter\n:test:path:total{name="\\"abc\\\\\\""} 2\n'
    )
