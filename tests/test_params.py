"""params.yaml: the loader and the checks every knob goes through (notmnist.plumbing.params)."""

import os
import time

import pytest
import yaml

from notmnist.plumbing import params
from notmnist.plumbing.errors import ParamError

SPEC = {
    "rate": params.number(0, None, lo_open=True),
    "epochs": params.integer(1, 1000),
    "optimizer": params.choice("sgd", "adam"),
    "shuffle": params.boolean(),
}


def write_params(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def load(path):
    return params.load_section("train", SPEC, path=path)


def test_valid_section_is_returned_typed(tmp_path):
    path = write_params(tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: adam\n  shuffle: true\n")
    assert load(path) == {"rate": 1.0, "epochs": 3, "optimizer": "adam", "shuffle": True}


@pytest.mark.parametrize(
    "line, message",
    [
        ("rate: -0.1", "train.rate: bad value -0.1"),
        ("rate: 0", "train.rate: bad value 0"),
        ("rate: .nan", "train.rate"),
        ("epochs: 2.5", "train.epochs: bad value 2.5"),
        ("optimizer: adamw", "train.optimizer: bad value 'adamw'; allowed: one of sgd, adam"),
        ("shuffle: 1", "train.shuffle: bad value 1; allowed: true or false"),
    ],
)
def test_bad_value_names_parameter_value_and_what_is_allowed(tmp_path, line, message):
    good = {"rate": "rate: 1", "epochs": "epochs: 3", "optimizer": "optimizer: sgd", "shuffle": "shuffle: false"}
    good[line.split(":")[0]] = line
    path = write_params(tmp_path, "train:\n" + "".join(f"  {v}\n" for v in good.values()))
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(path)


def test_exponent_without_dot_is_a_number_not_a_string(tmp_path):
    # PyYAML reads `1e-4` as the string '1e-4'; users (and `dvc exp run -S`) write it anyway
    path = write_params(tmp_path, "train:\n  rate: 1e-4\n  epochs: 3\n  optimizer: sgd\n  shuffle: true\n")
    assert load(path)["rate"] == 1e-4
    path.write_text(path.read_text().replace("1e-4", "fast"))
    with pytest.raises(ParamError, match="train.rate: bad value 'fast'"):
        load(path)


def test_unknown_and_missing_keys_are_named(tmp_path):
    path = write_params(
        tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: sgd\n  shuffle: true\n  learnig_rate: 2\n"
    )
    with pytest.raises(ParamError, match="train.learnig_rate: unknown parameter"):
        load(path)
    path = write_params(tmp_path, "train:\n  rate: 1\n")
    with pytest.raises(ParamError, match="train.epochs: missing"):
        load(path)


def test_an_unknown_key_close_to_a_known_one_gets_a_suggestion(tmp_path):
    path = write_params(tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: sgd\n  shuffle: true\n  epoch: 4\n")
    with pytest.raises(ParamError, match=r"train\.epoch: unknown parameter \(did you mean train\.epochs\?\)"):
        load(path)


def test_missing_section_and_bad_yaml_name_the_file(tmp_path):
    path = write_params(tmp_path, "other: {}\n")
    with pytest.raises(ParamError, match="section 'train' is missing"):
        load(path)
    path = write_params(tmp_path, "train: [unclosed\n")
    with pytest.raises(ParamError, match="params.yaml: not valid YAML"):
        load(path)


@pytest.mark.parametrize("value", [0.5, 1, 7, 0.001])
def test_a_split_size_is_a_fraction_below_one_or_a_whole_count(value):
    assert params.split_size()("split.valid", value) == value


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "half"])
def test_other_split_sizes_are_refused(value):
    with pytest.raises(ParamError, match="split.valid: bad value"):
        params.split_size()("split.valid", value)


def test_a_check_across_the_section_runs_after_each_knob_passed_its_own(tmp_path):
    def rate_below_epochs(values):
        if values["rate"] >= values["epochs"]:
            raise ParamError("train.rate, train.epochs: the rate must be below the epochs")

    path = write_params(tmp_path, "train:\n  rate: 5\n  epochs: 3\n  optimizer: sgd\n  shuffle: true\n")
    with pytest.raises(ParamError, match="must be below"):
        params.load_section("train", SPEC, rate_below_epochs, path=path)


def billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}' if i > 1 else '*a'] * 10)}]")
    return "\n".join(lines) + "\ntrain: {rate: *a9, epochs: 3, optimizer: sgd, shuffle: true}\n"


def merge_doubling(levels: int = 40) -> str:
    lines = ["m0: &m0 {k: v}"] + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (billion_laughs(), "aliases expand it past"),
    "merge keys doubling": (merge_doubling(), "aliases expand it past"),
    "an alias inside itself": ("a: &a [*a]\n", "refers to a value that holds it"),
    "not UTF-8": (b"train:\n  optimizer: \xff\xfe\n", r"not UTF-8 text \(byte 0xff at offset 20\)"),
    "deep flow nesting": ("a: " + "[" * 200 + "]" * 200, "nested deeper than"),
    "deep block nesting": ("".join("  " * i + f"k{i}:\n" for i in range(100)), "nested deeper than"),
    "too many values": ("a: [" + ",".join(["1"] * 50_000) + "]\n", "more than 20000 YAML values"),
    "a huge file": ("a: " + "x" * 2**20, "too large"),
    "a list": ("- 1\n- 2\n", "must be a mapping of sections, not list"),
    "a scalar": ("hello\n", "must be a mapping of sections, not str"),
    "an int past Python's digit limit": ("a: " + "9" * 5000 + "\n", "not valid YAML: ValueError"),
    "a date that is not one": ("a: 2001-13-45\n", "not valid YAML: ValueError"),
    "two documents": ("a: 1\n---\nb: 2\n", "not valid YAML"),
    "a Python object": ("a: !!python/object:os.system [ls]\n", "not valid YAML"),
}


@pytest.mark.parametrize("content, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_any_params_file_is_one_short_error_within_a_second(tmp_path, content, message):
    path = tmp_path / "params.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    start = time.perf_counter()
    with pytest.raises(ParamError, match=message) as caught:
        load(path)
    assert time.perf_counter() - start < 1
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_a_fifo_as_params_file_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "params.yaml")
    with pytest.raises(ParamError, match="not a regular file: a FIFO"):
        load(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    "value, shown",
    [("x" * 100_000, "'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'"), (list(range(10_000)), "[0, 1, 2, 3, 4, 5, ...]")],
)
def test_a_bad_value_is_shown_short(value, shown):
    with pytest.raises(ParamError) as caught:
        params.choice("sgd")("train.optimizer", value)
    assert str(caught.value) == f"train.optimizer: bad value {shown}; allowed: one of sgd"


def test_a_huge_unknown_key_is_named_short(tmp_path):
    path = write_params(tmp_path, f"train:\n  ? {'k' * 5000}\n  : 1\n  rate: 1\n")
    with pytest.raises(ParamError, match=r"train\.'k+\.\.\.k+': unknown parameter") as caught:
        load(path)
    assert len(str(caught.value)) < 200


def test_the_c_loader_is_used_when_installed():
    assert params.LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("value", [True, False])
def test_a_whole_number_knob_refuses_true_and_false(value):
    # YAML's true is a bool, and Python's bool is an int: without the check it would pass as 1
    with pytest.raises(ParamError, match="train.epochs: bad value"):
        params.integer(0, 10)("train.epochs", value)


def test_settings_read_a_section_into_attributes_and_gather_a_group(tmp_path):
    from dataclasses import FrozenInstanceError, dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Train:
        SECTION: ClassVar[str] = "train"
        rate: float = params.knob(SPEC["rate"])
        epochs: int = params.knob(SPEC["epochs"])
        chosen: dict = params.group({"optimizer": SPEC["optimizer"], "shuffle": SPEC["shuffle"]})

    path = write_params(tmp_path, "train:\n  rate: 1\n  epochs: 3\n  optimizer: adam\n  shuffle: true\n")
    train = params.load(Train, path=path)
    assert (train.rate, train.epochs, train.chosen) == (1.0, 3, {"optimizer": "adam", "shuffle": True})
    with pytest.raises(FrozenInstanceError):
        train.rate = 2.0
    with pytest.raises(ParamError, match=r"train\.shufle: unknown parameter \(did you mean train\.shuffle\?\)"):
        params.parse(Train, {"rate": 1, "epochs": 3, "optimizer": "adam", "shufle": True})
    with pytest.raises(TypeError):  # no defaults in code: params.yaml holds every value
        Train(rate=1.0, epochs=3)
