import pytest

from vqspeech.config import EMAQuantizerConfig, QuantizerConfig, config_from_dict, load_config, save_config
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
    ({"bogus": 1}, r"unknown key bogus"),
])
def test_bad_configs(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict(data, "conf/x.yaml")


def test_bad_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train_conf:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_config(p)


def test_training_device_parsing():
    import torch

    from vqspeech.errors import UserError
    from vqspeech.train import training_device

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
