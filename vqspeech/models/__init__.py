"""Model parts: encoder, vector quantizer, decoders (WaveNet, spectral), and the assembled VQ-VAE."""

from .encoder import ConvEncoder
from .quantizer import VectorQuantizer
from .spectral import SpectralDecoder
from .vqvae import VQVAE, SpectralVQVAE, build_model
from .wavenet import WaveNet

__all__ = ["ConvEncoder", "VectorQuantizer", "WaveNet", "SpectralDecoder", "VQVAE", "SpectralVQVAE", "build_model"]
