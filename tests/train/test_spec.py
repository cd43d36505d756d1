import pytest

from tests.conftest import SPECS, spec_text
from train.errors import InputError
from train.spec import load_spec, parse_spec


def test_shipped_specs_load():
    clf = load_spec(SPECS / "penguins.toml")
    assert (clf.task, clf.label, clf.name) == ("classification", "species", "penguins")
    kinds = {f.name: f.kind for f in clf.features}
    assert kinds["island"] == "string" and kinds["year"] == "integer" and kinds["bill_length_mm"] == "numeric"
    assert clf.features[2].bucketize == (185.0, 195.0, 205.0, 215.0)
    reg = load_spec(SPECS / "penguins_body_mass.toml")
    assert (reg.task, reg.label) == ("regression", "body_mass_g")
    assert {f.name: f.hash_bins for f in reg.features}["island"] == 8


def test_spec_keeps_its_text_and_seed_override():
    spec = load_spec(SPECS / "penguins.toml")
    assert parse_spec(spec.source_text) == spec
    other = spec.with_seed(7)
    assert other.training.seed == 7 and other.training.epochs == spec.training.epochs


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BASE = spec_text()


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (BASE + "\n[extra]\nx = 1\n", "unknown key 'extra' in the spec"),
        (_with(BASE, 'kind = "numeric"', 'kind = "numeric"\nscale = 2'), "unknown key 'scale' in [[features]] #1"),
        (_with(BASE, "epochs = 40", "epochs = 40\nepoch = 3"), "unknown key 'epoch' in [training]"),
        (_with(BASE, "max_accuracy_drop", "max_rmse_increase"), "unknown key 'max_rmse_increase' in [gate]"),
        (_with(BASE, 'task = "classification"', 'task = "ranking"'), "[model].task is 'ranking'"),
        (_with(BASE, 'kind = "string"', 'kind = "texts"'), "has kind 'texts'"),
        (_with(BASE, "epochs = 40", "epochs = true"), "[training].epochs must be an integer"),
        (_with(BASE, "epochs = 40", "epochs = 0"), "[training].epochs must be at least 1"),
        (_with(BASE, "bucketize = [185.0, 195.0, 205.0, 215.0]", "bucketize = [3.0, 1.0]"), "strictly increasing"),
        (_with(BASE, 'kind = "string"', 'kind = "string"\nbucketize = [1.0]'), "'bucketize' does not apply to string"),
        (_with(BASE, 'kind = "numeric"', 'kind = "numeric"\nhash_bins = 4'), "'hash_bins' does not apply to numeric"),
        (_with(BASE, 'name = "bill_depth_mm"', 'name = "bill_length_mm"'), "declared more than once"),
        (_with(BASE, 'name = "year"', 'name = "species"'), "label 'species' is also declared as a feature"),
        (_with(BASE, 'label = "species"', ""), "missing key 'label' in [model]"),
        ("not = [valid", "not valid TOML"),
        (
            _with(BASE, 'name = "bill_depth_mm"', 'name = "od280/od315_of_diluted_wines"'),  # a scikit-learn column
            "feature name 'od280/od315_of_diluted_wines' cannot name a model input",
        ),
        (_with(BASE, 'name = "bill_depth_mm"', 'name = "bill depth"'), "feature name 'bill depth' cannot"),
        (_with(BASE, 'name = "bill_depth_mm"', 'name = "_depth"'), "feature name '_depth' cannot"),
        (_with(BASE, "epochs = 40", 'epochs = 40\noptimizer = "adagrad"'), "[training].optimizer is 'adagrad'"),
        (_with(BASE, "epochs = 40", "epochs = 40\nmomentum = 0.9"), "momentum applies to sgd and rmsprop"),
        (_with(BASE, "epochs = 40", 'epochs = 40\noptimizer = "sgd"\nmomentum = 1.5'), "must be in [0, 1)"),
        (_with(BASE, "epochs = 40", "epochs = 40\nweight_decay = 0.1"), "weight_decay applies to adamw"),
        (_with(BASE, "epochs = 40", 'epochs = 40\nclass_weight = "auto"'), "expected one of none, balanced"),
        (_with(BASE, "epochs = 40", "epochs = 40\nearly_stopping_patience = -1"), "0 (off) or more"),
    ],
)
def test_bad_specs_name_the_problem(text, phrase):
    with pytest.raises(InputError) as e:
        parse_spec(text)
    assert phrase in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_spec(tmp_path / "nope.toml")


def test_op_determinism_can_be_turned_off_and_on_again():
    """--no-op-determinism once crashed: TF 2.21 has no tf.config.experimental.disable_op_determinism."""
    from tensorflow.python.framework import config as tf_config

    from train.fit import configure

    configure(1, op_determinism=False)
    assert not tf_config.is_op_determinism_enabled()
    configure(1, op_determinism=True)
    assert tf_config.is_op_determinism_enabled()


def test_class_weight_is_for_classification_only():
    text = spec_text("penguins_body_mass.toml").replace("[training]\n", '[training]\nclass_weight = "balanced"\n', 1)
    with pytest.raises(InputError, match="class_weight applies to classification, not regression"):
        parse_spec(text)


KINDS_BASE = """
[model]
name = "m"
task = "classification"
label = "y"
[[features]]
name = "f"
"""


@pytest.mark.parametrize(
    "feature, message",
    [
        ('kind = "image"\nheight = 8', "an image feature needs width"),
        ('kind = "image"\nheight = 8\nwidth = 8\nchannels = 2', "must be 1 (grayscale) or 3 (RGB)"),
        ('kind = "image"\nheight = 0\nwidth = 8', "height must be at least 1"),
        ('kind = "text"\noutput_mode = "bag"', "output_mode is 'bag'"),
        ('kind = "text"\noutput_mode = "tf_idf"\nsequence_length = 4', "sequence_length applies to output_mode"),
        ('kind = "text"\nheight = 4', "'height' does not apply to text"),
        ('kind = "numeric"\nshape = [8, 0]', "shape must be a list of 1 to 4 positive integers"),
        ('kind = "numeric"\nshape = [2]\nbucketize = [1.0]', "bucketize applies to scalar numeric"),
        ('kind = "string"\nrequired = "yes"', "required must be true or false"),
    ],
)
def test_new_kinds_are_checked_key_by_key(feature, message):
    with pytest.raises(InputError) as e:
        parse_spec(KINDS_BASE + feature + "\n")
    assert message in str(e.value)


def test_new_kinds_parse_with_their_defaults():
    spec = parse_spec(
        KINDS_BASE
        + 'kind = "text"\nrequired = true\n[[features]]\nname = "px"\nkind = "numeric"\nshape = [8, 8]\n'
        + '[[features]]\nname = "img"\nkind = "image"\nheight = 28\nwidth = 28\n'
    )
    text, px, img = spec.features
    assert (text.required, text.output_mode, text.sequence_length, text.max_tokens) == (True, "int", 64, 10000)
    assert px.tensor_shape == (8, 8) and img.channels == 3 and img.tensor_shape == ()


@pytest.mark.parametrize("builder", ["nocolon", "mod:", ":fn", "mod:not-an-identifier"])
def test_a_malformed_builder_is_refused(builder):
    with pytest.raises(InputError, match="must be 'module:function'"):
        parse_spec(KINDS_BASE.replace('label = "y"', f'label = "y"\nbuilder = "{builder}"') + 'kind = "numeric"\n')
