from pathlib import Path

import pytest

from vqspeech.config import (EMAQuantizerConfig, QuantizerConfig, apply_overrides, config_from_dict, load_config,
                             save_config)
from vqspeech.errors import ConfigError


def test_defaults_are_the_paper_model():
    cfg = config_from_dict({})
    assert cfg.encoder_conf.hop == 64 and len(cfg.encoder_conf.strides) == 6
    assert cfg.encoder_conf.kernel_sizes == [4] * 6
    assert cfg.quantizer_conf.num_codes == 512 and cfg.quantizer_conf.beta == 0.25
    assert isinstance(cfg.quantizer_conf, EMAQuantizerConfig) and cfg.quantizer_conf.decay == 0.99
    assert cfg.decoder_conf.quantization_channels == 256


def test_registry_and_roundtrip(tmp_path):
    cfg = config_from_dict({"quantizer": "vq", "quantizer_conf": {"num_codes": 8}, "train_conf": {"lr": 1}})
    assert type(cfg.quantizer_conf) is QuantizerConfig and cfg.train_conf.lr == 1.0
    save_config(tmp_path / "c.yaml", cfg)
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("data,pattern", [
    ({"encoder_conf": {"chanels": 3}}, r"encoder_conf: unknown key chanels"),
    ({"quantizer": "ema", "quantizer_conf": {"decay": "fast"}}, r"quantizer_conf.decay: expected a number"),
    ({"quantizer": "vq", "quantizer_conf": {"decay": 0.9}}, r"quantizer_conf: unknown key decay"),
    ({"quantizer": "gumbel"}, r"quantizer: unknown 'gumbel'"),
    ({"train_conf": {"batch_size": 2.5}}, r"train_conf.batch_size: expected an integer"),
    ({"encoder_conf": {"strides": [2, 2], "kernel_sizes": [4]}}, r"equal length"),
    ({"train_conf": {"amp": "fp8"}}, r"amp"),
    ({"bogus": 1}, r"^conf/x.yaml: unknown key bogus"),
    ({"sample_rate": 0}, r"^conf/x.yaml: sample_rate: must be >= 1, got 0$"),
    ({"encoder_conf": {"latent_dim": 0}}, r"encoder_conf.latent_dim: must be >= 1, got 0$"),
    ({"decoder_conf": {"layers": -3}}, r"decoder_conf.layers: must be >= 1, got -3$"),
    ({"decoder_conf": {"dilation_cycle": 0}}, r"decoder_conf.dilation_cycle: must be >= 1"),
    ({"decoder_conf": {"quantization_channels": 1}}, r"decoder_conf.quantization_channels: must be >= 2"),
    ({"decoder": "spectral", "decoder_conf": {"min_magnitude": 0}}, r"decoder_conf.min_magnitude: must be > 0"),
    ({"quantizer_conf": {"num_codes": 0}}, r"quantizer_conf.num_codes: must be >= 1"),
    ({"quantizer_conf": {"beta": -0.25}}, r"quantizer_conf.beta: must be >= 0"),
    ({"quantizer_conf": {"decay": 1.0}}, r"quantizer_conf.decay: must be in \[0, 1\), got 1.0"),
    ({"quantizer": "vq", "quantizer_conf": {"restart_every": 0}}, r"quantizer_conf.restart_every: must be >= 1"),
    ({"train_conf": {"lr": 0}}, r"train_conf.lr: must be > 0, got 0"),
    ({"train_conf": {"lr": float("nan")}}, r"train_conf.lr: must be > 0, got nan"),
    ({"train_conf": {"grad_clip": float("nan")}}, r"train_conf.grad_clip: must be >= 0, got nan"),
    ({"train_conf": {"warmup_steps": -1}}, r"train_conf.warmup_steps: must be >= 0"),
    ({"train_conf": {"min_lr_ratio": 1.5}}, r"train_conf.min_lr_ratio: must be in \[0, 1\]"),
    ({"train_conf": {"keep_checkpoints": 0}}, r"train_conf.keep_checkpoints: must be >= 1"),
    ({"train_conf": {"amp_residual_stream": True}}, r"train_conf.amp_residual_stream: needs amp bf16 or fp16"),
])
def test_bad_configs(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict(data, "conf/x.yaml")


def test_bad_vocoder_configs():
    from vqspeech.wavenet_vocoder.config import vocoder_config_from_dict
    with pytest.raises(ConfigError, match=r"^v.yaml: sample_rate: must be >= 1"):
        vocoder_config_from_dict({"sample_rate": -16000}, "v.yaml")
    with pytest.raises(ConfigError, match=r"^v.yaml: features.min_magnitude: must be > 0"):
        vocoder_config_from_dict({"features": {"min_magnitude": 0.0}}, "v.yaml")
    with pytest.raises(ConfigError, match=r"^v.yaml: decoder_conf.residual_channels: must be >= 1"):
        vocoder_config_from_dict({"decoder_conf": {"residual_channels": 0}}, "v.yaml")


def test_set_overrides_equal_the_same_values_written_in_the_file(tmp_path):
    """``--set section.key=value``: values read as YAML (int, float, bool, list, string), sections
    created when the file lacks them, the file's other values kept; the file itself untouched."""
    (tmp_path / "base.yaml").write_text("train_conf: {batch_size: 4, lr: 1.0e-3}\nquantizer_conf: {num_codes: 64}\n")
    (tmp_path / "edited.yaml").write_text(
        "train_conf: {batch_size: 32, lr: 1.0e-3, amp: bf16, amp_residual_stream: true}\n"
        "quantizer_conf: {num_codes: 64}\n"
        "encoder_conf: {kernel_sizes: [4, 4, 4], strides: [2, 2, 2]}\n")
    overrides = ["train_conf.batch_size=32", "train_conf.amp=bf16", "train_conf.amp_residual_stream=true",
                 "encoder_conf.kernel_sizes=[4, 4, 4]", "encoder_conf.strides=[2,2,2]"]
    cfg = load_config(tmp_path / "base.yaml", overrides)
    assert cfg == load_config(tmp_path / "edited.yaml")
    assert cfg.train_conf.batch_size == 32 and cfg.train_conf.lr == 1e-3 and cfg.encoder_conf.hop == 8
    assert load_config(tmp_path / "base.yaml").train_conf.batch_size == 4
    data = {"train_conf": {"lr": 1.0}}
    assert apply_overrides(data, ["train_conf.lr=2.5e-4", "train_conf.compile=false"]) == \
        {"train_conf": {"lr": 2.5e-4, "compile": False}}
    assert data == {"train_conf": {"lr": 1.0}}  # a copy: the caller's mapping is not changed


@pytest.mark.parametrize("override,pattern", [
    ("train_conf.batch_size", r"^--set train_conf.batch_size: expected section.key=value"),
    ("=3", r"^--set =3: expected section.key=value"),
    ("train_conf..lr=3", r"^--set train_conf..lr=3: expected section.key=value"),
    ("train_conf.lr.x=1", r"^--set train_conf.lr.x=1: train_conf.lr is a value, not a section$"),
    ("train_conf.lr=[1", r"^--set train_conf.lr=\[1: the value is not YAML"),
    ("train_conf.batchsize=3", r"^c.yaml with --set train_conf.batchsize=3: train_conf: unknown key batchsize "
                               r"\(valid: .*batch_size"),
    ("train_conf.batch_size=many", r"^c.yaml with --set train_conf.batch_size=many: train_conf.batch_size: "
                                   r"expected an integer, got 'many'$"),
])
def test_bad_overrides_are_one_line_errors_naming_the_override(tmp_path, monkeypatch, override, pattern):
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text("train_conf: {lr: 1.0e-3}\n")
    with pytest.raises(ConfigError, match=pattern):
        load_config("c.yaml", [override])


def test_prior_and_vocoder_configs_take_overrides_without_a_file():
    from vqspeech.prior.config import load_prior_config
    from vqspeech.wavenet_vocoder.config import VocoderConfig, load_vocoder_config

    prior = load_prior_config(None, ["train_conf.max_steps=7", "model.dropout=0"])
    assert prior.train_conf.max_steps == 7 and prior.model.dropout == 0.0
    vocoder = load_vocoder_config(None, ["train_conf.max_steps=7"])
    # the vocoder's own defaults (batch 8, lr 1e-3) stay under the override
    assert vocoder.train_conf.max_steps == 7 and vocoder.train_conf.lr == VocoderConfig().train_conf.lr == 1e-3
    with pytest.raises(ConfigError, match=r"^prior config with --set model.layer=2: model: unknown key layer"):
        load_prior_config(None, ["model.layer=2"])


def test_a_config_file_that_is_not_a_mapping_is_an_error_naming_it(tmp_path):
    from vqspeech.prior.config import load_prior_config
    from vqspeech.wavenet_vocoder.config import load_vocoder_config

    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    for load in (load_config, load_prior_config, load_vocoder_config):
        with pytest.raises(ConfigError, match=r"list.yaml: top level must be a mapping$"):
            load(tmp_path / "list.yaml", ["train_conf.lr=1"])


def test_bad_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train_conf:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_config(p)


def test_training_device_parsing():
    import torch

    from vqspeech.errors import UserError
    from vqspeech.training_runtime import training_device

    assert training_device("cpu") == torch.device("cpu")
    assert training_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device 'gpu'"):
        training_device("gpu")
    with pytest.raises(UserError, match="training runs on cpu or cuda"):
        training_device("meta")
    if torch.cuda.is_available():
        # regression: a bare "cuda" crashed torch.cuda.set_device; it now means cuda:<local rank>
        assert training_device("cuda", local_rank=0) == torch.device("cuda:0")
        with pytest.raises(UserError, match="CUDA device"):
            training_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:1"):
            with pytest.raises(UserError, match=f"--device {name}: no CUDA device"):
                training_device(name)


def test_a_number_in_exponent_form_without_a_point_is_a_number(tmp_path):
    """YAML 1.1 (PyYAML) reads 2e-3 as the string '2e-3'; a float field takes it as 0.002, from a
    file or from --set, while a word stays an error and an integer field stays strict."""
    (tmp_path / "c.yaml").write_text("train_conf:\n  lr: 1e-4\n")
    assert load_config(tmp_path / "c.yaml").train_conf.lr == pytest.approx(1e-4)
    cfg = config_from_dict(apply_overrides({}, ["train_conf.lr=2e-3", "quantizer_conf.decay=+9E-1"]))
    assert cfg.train_conf.lr == pytest.approx(2e-3) and cfg.quantizer_conf.decay == pytest.approx(0.9)
    with pytest.raises(ConfigError, match=r"train_conf.lr: expected a number, got '2e-3x'"):
        config_from_dict(apply_overrides({}, ["train_conf.lr=2e-3x"]))
    with pytest.raises(ConfigError, match=r"train_conf.max_steps: expected an integer, got '1e3'"):
        config_from_dict(apply_overrides({}, ["train_conf.max_steps=1e3"]))
