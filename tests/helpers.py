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
