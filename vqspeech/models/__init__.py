"""Model parts: encoder, vector quantizer, WaveNet decoder, and the assembled VQ-VAE."""

from .encoder import ConvEncoder
from .quantizer import VectorQuantizer
from .vqvae import VQVAE
from .wavenet import WaveNet

__all__ = ["ConvEncoder", "VectorQuantizer", "WaveNet", "VQVAE"]
