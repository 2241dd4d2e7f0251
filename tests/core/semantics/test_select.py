import json

import pytest

from core.semantics import SkeletalEncoder, select_supervisor


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("SMT_VLM_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # nothing cached, nothing fetched


def test_no_weights_means_the_skeletal_fallback():
    sup = select_supervisor()
    assert isinstance(sup.encoder, SkeletalEncoder)
    assert sup.description.startswith("skeletal fallback: no BLIP-2 weights found") and "--vlm" in sup.description


def test_wrong_folders_say_what_is_wrong(tmp_path):
    missing = select_supervisor(tmp_path / "nope")
    assert isinstance(missing.encoder, SkeletalEncoder) and "does not exist" in missing.description
    empty = tmp_path / "empty"
    empty.mkdir()
    sup = select_supervisor(empty)
    assert isinstance(sup.encoder, SkeletalEncoder) and "no config.json" in sup.description
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    sup = select_supervisor(other)
    assert isinstance(sup.encoder, SkeletalEncoder) and "'bert' model" in sup.description
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "blip-2"}))  # no weights, no tokenizer
    sup = select_supervisor(broken)
    assert isinstance(sup.encoder, SkeletalEncoder) and sup.description.startswith("skeletal fallback: could not load")
