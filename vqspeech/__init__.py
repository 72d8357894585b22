"""vqspeech: VQ-VAE speech toolkit for voice conversion and unsupervised phoneme discovery.

From Python (:mod:`vqspeech.api`)::

    import vqspeech
    model = vqspeech.load()                  # the shipped model, or vqspeech.load("exp/x/checkpoint.pt")
    vqspeech.save_audio("out.wav", model.convert("in.wav", "slt"), model.sample_rate)
"""

__version__ = "0.1.0"

# Loaded on first use, so that ``import vqspeech`` (every CLI's start) stays light.
_LAZY = {"load": "api", "SpeechModel": "api", "load_audio": "audio", "save_audio": "audio",
         "UserError": "errors"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'vqspeech' has no attribute {name!r}")
