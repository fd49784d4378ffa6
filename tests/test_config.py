from pathlib import Path

import pytest

from polymodal.config import ConfigError, RunConfig, apply_overrides, dump_config, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_validate() -> None:
    cfg = RunConfig()
    assert cfg.train.strategy == "full"
    assert cfg.data.on_error == "fail"


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = write(tmp_path, "train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "train.lrr" in msg and "unknown key" in msg and str(p) in msg


def test_wrong_type_names_key(tmp_path: Path) -> None:
    p = write(tmp_path, "train:\n  epochs: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "train.epochs" in str(err.value)
    assert "'many'" in str(err.value)


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    p = write(tmp_path, "train:\n  epochs: 2\n")
    cfg = load_config(
        p, ["train.epochs=5", "train.lr=3e-4", "data.manifest=/x/m.jsonl", "train.locked_towers=[image]"]
    )
    assert cfg.train.epochs == 5
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.manifest == "/x/m.jsonl"
    assert cfg.train.locked_towers == ["image"]


def test_override_unknown_key_is_error() -> None:
    with pytest.raises(ConfigError, match="data.manifset"):
        load_config(None, ["data.manifset=foo"])


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["train.epochs"])


def test_override_into_scalar_is_error() -> None:
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"train": 3}, ["train.epochs=1"])


def test_relative_manifest_resolved_against_config_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "m.jsonl").write_text("", encoding="utf-8")
    p = write(tmp_path, "data:\n  manifest: data/m.jsonl\n")
    cfg = load_config(p)
    assert cfg.data.manifest == str((tmp_path / "data" / "m.jsonl").resolve())


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_dump_round_trip(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.epochs=3", "model.preset=lite-dual"])
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    again = load_config(out)
    assert again == cfg


@pytest.mark.parametrize("word", ["no", "No", "off", "n"])
def test_yaml_11_booleans_stay_words_for_string_keys(tmp_path: Path, word: str) -> None:
    """YAML 1.1 reads `no` as false; `train.mixed_precision=no` must mean float32, not fail."""
    if word in ("no", "No"):
        assert load_config(None, [f"train.mixed_precision={word.lower()}"]).train.mixed_precision == "no"
        p = write(tmp_path, f"train:\n  mixed_precision: {word.lower()}\n")
        assert load_config(p).train.mixed_precision == "no"
    # a label literally named like a YAML 1.1 boolean stays that word in a list of names
    cfg = load_config(None, [f"data.include_labels=[{word}, yes, on]"])
    assert cfg.data.include_labels == [word, "yes", "on"]


@pytest.mark.parametrize("word,value", [("yes", True), ("on", True), ("true", True), ("no", False),
                                        ("off", False), ("False", False)])
def test_boolean_keys_still_take_yes_no_on_off(tmp_path: Path, word: str, value: bool) -> None:
    assert load_config(None, [f"train.progress={word}"]).train.progress is value
    p = write(tmp_path, f"train:\n  progress: {word}\n")
    assert load_config(p).train.progress is value


@pytest.mark.parametrize("override,key,suggestion", [
    ("train.epoch=3", "train.epoch", "train.epochs"),
    ("trian.lr=1", "trian", "train"),
    ("data.batchsize=8", "data.batchsize", "data.batch_size"),
    ("data.image.szie=64", "data.image.szie", "data.image.size"),
    ("model.heads.label.kindd=x", "model.heads.label.kindd", "model.heads.label.kind"),
    ("objective.label_smoothin=0.1", "objective.label_smoothin", None),
])
def test_unknown_key_says_did_you_mean(override: str, key: str, suggestion: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    msg = str(err.value)
    line = next(ln for ln in msg.splitlines() if ln.strip().startswith(key + ":"))
    if suggestion is None:  # contrastive has no label_smoothing: suggest nothing misleading
        assert "did you mean" not in line, line
    else:
        assert f"did you mean {suggestion}?" in line, line


def test_unknown_key_of_an_objective_kind_suggests_that_kinds_own_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["objective.kind=classification", "objective.label_smoothin=0.1"])
    assert "did you mean objective.label_smoothing?" in str(err.value)
