"""vqspeech: VQ-VAE speech toolkit for voice conversion and unsupervised phoneme discovery."""

__version__ = "0.1.0"
