from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import modelbase
from serving import config as cfg
from serving import flags
from serving.source import aspired_versions


def _model(text):
    c = model_server_config_pb2.ModelConfig()
    text_format.Parse(text, c)
    return c


def test_versions_are_ascii_digit_directories(tmp_path):
    for name in ("1", "00000123", "7", ".staging-1-ab", "notes", "12abc", "²", "٩", "99999999999999999999"):
        (tmp_path / name).mkdir()
    (tmp_path / "9").write_text("a file, not a version")
    assert sorted(modelbase.scan_versions(tmp_path)) == [1, 7, 123]
    assert modelbase.versions(tmp_path / "missing") == []
    with pytest.raises(FileNotFoundError):
        modelbase.scan_versions(tmp_path / "missing")  # "could not look" is not "no versions"


def test_version_policies():
    present = {v: Path(f"/m/{v}") for v in (1, 2, 5, 9)}
    assert list(aspired_versions(_model('name: "m" base_path: "/m"'), present)) == [9]
    assert sorted(
        aspired_versions(_model('name: "m" model_version_policy { latest { num_versions: 2 } }'), present)
    ) == [5, 9]
    assert sorted(aspired_versions(_model('name: "m" model_version_policy { all {} }'), present)) == [1, 2, 5, 9]
    specific = _model('name: "m" model_version_policy { specific { versions: 2 versions: 4 } }')
    assert sorted(aspired_versions(specific, present)) == [2]


def test_model_server_config_parsing(tmp_path):
    p = tmp_path / "models.config"
    p.write_text(
        'model_config_list { config { name: "a" base_path: "/a" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } } }'
    )
    c = cfg.model_server_config(p)
    assert c.model_config_list.config[0].version_labels["stable"] == 1
    p.write_text('model_config_list { config { name: "a" base_path: "/a" }\n config { nme: "b" } }')
    with pytest.raises(cfg.ConfigError, match=r"Error parsing text-format tensorflow.serving.ModelServerConfig.*2:"):
        cfg.model_server_config(p)
    p.write_text('model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }')
    with pytest.raises(cfg.ConfigError, match="more than once"):
        cfg.model_server_config(p)
    p.write_text('model_config_list { config { name: "a" base_path: "/a" logging_config { } } }')
    with pytest.raises(cfg.ConfigError, match="request-logger"):
        cfg.model_server_config(p)


def test_batching_and_monitoring_files(tmp_path):
    b = tmp_path / "batching.config"
    b.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 500 }\nallowed_batch_sizes: 4\n"
        "allowed_batch_sizes: 8\n"
    )
    assert cfg.batching_parameters(b) == cfg.Batching(8, 500, 10, 4, (4, 8), False)
    b.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n")
    with pytest.raises(cfg.ConfigError, match="must match max_batch_size"):
        cfg.batching_parameters(b)
    assert cfg.batching_parameters(None) == cfg.Batching()
    b.write_text("max_batch_size { value: 100 }\nenable_large_batch_splitting { value: true }\n")
    split = cfg.batching_parameters(b)  # max_execution_batch_size defaults to max_batch_size, as in TF Serving
    assert (split.max_batch_size, split.execution_batch_size) == (100, 100)
    b.write_text(
        "max_batch_size { value: 100 }\nenable_large_batch_splitting { value: true }\n"
        "max_execution_batch_size { value: 8 }\n"
    )
    assert cfg.batching_parameters(b).execution_batch_size == 8
    b.write_text(  # TF Serving checks the last allowed size against both limits
        "max_batch_size { value: 100 }\nenable_large_batch_splitting { value: true }\n"
        "max_execution_batch_size { value: 8 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 8\n"
    )
    with pytest.raises(cfg.ConfigError, match="must match max_batch_size"):
        cfg.batching_parameters(b)
    b.write_text(
        "max_batch_size { value: 100 }\nenable_large_batch_splitting { value: true }\n"
        "max_execution_batch_size { value: 8 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 100\n"
    )
    with pytest.raises(cfg.ConfigError, match="must be equal to max_execution_batch_size"):
        cfg.batching_parameters(b)
    b.write_text("max_batch_size { value: 8 \n")
    with pytest.raises(cfg.ConfigError, match=r"Error parsing text-format tensorflow\.serving\.BatchingParameters"):
        cfg.batching_parameters(b)
    m = tmp_path / "monitoring.config"
    m.write_text('prometheus_config { enable: true path: "/metrics" }')
    assert cfg.monitoring(m) == cfg.Monitoring(True, "/metrics")


def test_flags_have_tf_servings_names_and_defaults():
    a = flags.parse(["--model_base_path=/models/m"])
    assert (a.port, a.rest_api_port, a.model_name, a.file_system_poll_wait_seconds) == (8500, 0, "default", 1)
    assert a.enable_model_warmup is True and a.enable_batching is False
    assert a.model_config_file_poll_wait_seconds == 0 and a.saved_model_tags == "serve"
    b = flags.parse(["--model_base_path", "/m", "--enable_batching", "--enable_model_warmup=false", "--port=9000"])
    assert b.enable_batching is True and b.enable_model_warmup is False and b.port == 9000
    assert flags.channel_arguments("grpc.max_receive_message_length=10,grpc.lb_policy_name=round_robin") == [
        ("grpc.max_receive_message_length", 10),
        ("grpc.lb_policy_name", "round_robin"),
    ]


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["--model_base_path=/m", "--tensorflow_session_parallelism=2"], "cannot honour"),
        (["--model_base_path=/m", "--model_config_file=/c"], "cannot be used together"),
        ([], "either --model_base_path"),
        (["--model_base_path=/m", "--batching_parameters_file=/b"], "needs --enable_batching"),
        (["--model_base_path=/m", "--enable_batching=maybe"], "expected true or false"),
    ],
)
def test_flags_refused_with_a_message(argv, phrase, capsys):
    with pytest.raises(SystemExit) as e:
        flags.parse(argv)
    assert e.value.code == 2 and phrase in capsys.readouterr().err


def test_thread_pool_flags_reach_the_sessions(exported):
    """--tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism size the sessions of the
    versions the server loads (they were once parsed and then dropped)."""
    from serving.server import ModelServer

    server = ModelServer(
        flags.parse(
            [
                f"--model_base_path={exported / 'penguins'}",
                "--model_name=penguins",
                "--tensorflow_intra_op_parallelism=1",
                "--tensorflow_inter_op_parallelism=2",
            ]
        )
    )
    try:
        assert (server.core.options.intra_op_threads, server.core.options.inter_op_threads) == (1, 2)
        from serving.loader import SavedModelLoader
        from serving.servable_state import ServableId

        core = server.core
        loader = SavedModelLoader(
            ServableId("penguins", 1), exported / "penguins" / "1", core.options.load_options(), core.metrics
        )
        servable = loader.load()
        try:
            config = servable._session._config
            assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 2)
        finally:
            loader.unload()
    finally:
        server.core.close()
