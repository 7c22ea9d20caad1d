"""Audio style transfer: audio I/O, spectrograms and Griffin-Lim, random-CNN feature extractors,
chunked long-audio processing, metrics, ``stylize_audio``."""

from .io import AudioClip, load_audio, save_audio
from .stylize import AudioResult, AudioStyleConfig, stylize_audio

__all__ = ["AudioClip", "load_audio", "save_audio", "AudioResult", "AudioStyleConfig", "stylize_audio"]
