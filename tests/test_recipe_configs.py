"""Every config the recipes ship loads (a typo shows here, not an hour into a training), and the
shipped model is what its configs say."""

from pathlib import Path

import pytest
import torch

from vqspeech.config import config_from_dict, load_config
from vqspeech.pretrained import default_model_path
from vqspeech.prior.config import load_prior_config
from vqspeech.wavenet_vocoder.config import load_vocoder_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("egs/*/conf/*.yaml"))
# prior*.yaml and vocoder*.yaml are the prior's and the WaveNet vocoder's configs; the rest VQ-VAE configs
LOADERS = {"prior": load_prior_config, "vocoder": load_vocoder_config}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_recipe_config_loads(path):
    next((load for prefix, load in LOADERS.items() if path.stem.startswith(prefix)), load_config)(path)


def test_the_shipped_model_is_pretrained_gan_yaml():
    """The checkpoint was trained with conf/pretrained_gan.yaml (from pretrained.yaml's model): the same
    model sections, and pretrained_gan.yaml differs from pretrained.yaml only where it says."""
    # read as load_model reads it: keys added since it was trained take their defaults
    shipped = config_from_dict(torch.load(default_model_path(), map_location="cpu", weights_only=True)["config"]).to_dict()
    gan = load_config(ROOT / "egs/mini/conf/pretrained_gan.yaml").to_dict()
    base = load_config(ROOT / "egs/mini/conf/pretrained.yaml").to_dict()
    for section in ("sample_rate", "encoder_conf", "quantizer", "quantizer_conf", "decoder", "decoder_conf"):
        assert shipped[section] == gan[section], section
    assert {k: v for k, v in gan["decoder_conf"].items() if base["decoder_conf"][k] != v} == {
        "gan_weight": 0.1, "gan_on_conversions": True}
    changed = {k for k, v in gan["train_conf"].items() if base["train_conf"][k] != v}
    assert changed == {"init_from", "amp", "max_steps", "lr"}
    assert gan["encoder_conf"] == base["encoder_conf"] and gan["quantizer_conf"] == base["quantizer_conf"]
