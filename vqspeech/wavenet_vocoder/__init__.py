"""The WaveNet vocoder: the project's WaveNet conditioned on log-mel frames instead of codes.

Trained on ground-truth frames of any corpus (``vqspeech train-vocoder``), it turns a spectral
model's predicted frames into audio (``convert-voice --vocoder wavenet --vocoder-model
exp/vocoder/vocoder.pt``). Every generation backend (numba, reference, CUDA graph, triton) and
folding serve it unchanged: to them it is a WaveNet whose frame features come from mel frames.
"""

from .config import VocoderConfig, load_vocoder_config, vocoder_config_from_dict
from .model import VOCODER_KIND, LoadedVocoder, WaveNetVocoder, load_vocoder

__all__ = ["VOCODER_KIND", "LoadedVocoder", "VocoderConfig", "WaveNetVocoder", "load_vocoder",
           "load_vocoder_config", "vocoder_config_from_dict"]
