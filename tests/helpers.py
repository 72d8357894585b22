"""Small shared test helpers (tiny configs)."""

from vqspeech.config import config_from_dict


def tiny_config(**train_overrides):
    train = {"batch_size": 2, "segment_samples": 1024, "max_steps": 20, "lr": 3e-3, "warmup_steps": 0,
             "lr_schedule": "none", "log_every": 5, "val_every": 10, "checkpoint_every": 10,
             "val_batches": 1, "audio_samples": 1, "audio_sample_seconds": 0.02}
    train.update(train_overrides)
    return config_from_dict({
        "encoder_conf": {"channels": 16, "kernel_sizes": [4, 4, 4, 4], "strides": [2, 2, 2, 2], "latent_dim": 8},
        "quantizer": "ema",
        "quantizer_conf": {"num_codes": 16, "kmeans_init_batches": 2, "restart_every": 5, "buffer_size": 512},
        "decoder_conf": {"layers": 6, "dilation_cycle": 6, "residual_channels": 16, "gate_channels": 16,
                         "skip_channels": 16, "speaker_dim": 4, "cond_channels": 8},
        "train_conf": train,
    })


def sharp_tiny_wavenet(seed: int = 0, num_speakers: int = 3):
    """A tiny WaveNet VQ-VAE in eval mode whose decoder weights are scaled up 3x, so its output
    depends strongly on its inputs (the default init is near-uniform)."""
    import torch

    from vqspeech.models import VQVAE

    torch.manual_seed(seed)
    m = VQVAE(tiny_config(), num_speakers=num_speakers).eval()
    for p in m.decoder.parameters():
        p.data.mul_(3.0)
    return m


def train_without_last_speaker(tiny_corpus, out, cfg):
    """Train ``cfg`` on the tiny corpus's train set minus its last speaker (written to
    ``out/train``) into ``out/exp``; return (the training result, the held-out speaker)."""
    from vqspeech.kaldi_data_dir import read_data_dir
    from vqspeech.kaldi_data_dir_fix import subset_data_dir
    from vqspeech.train import train

    heldout = read_data_dir(tiny_corpus / "data" / "train").speakers[-1]
    subset_data_dir(tiny_corpus / "data" / "train", out / "train", [heldout])
    return train(cfg, out / "train", None, out / "exp", progress=False), heldout


def triton_device():
    """Where the Triton kernels' tests run: CUDA when there is one, else the CPU under Triton's
    interpreter (TRITON_INTERPRET=1, which conftest.py sets without CUDA); skips otherwise."""
    import pytest
    import torch

    from vqspeech.generation.triton_backend import interpreting

    if torch.cuda.is_available():
        return torch.device("cuda")
    if interpreting():
        return torch.device("cpu")
    pytest.skip("neither CUDA nor TRITON_INTERPRET")
