"""The reference regressor's ears: a log-mel spectrogram computed with ``torch.stft`` and a mel
filter bank of its own (the registry's torchaudio pins an older torch than this one; the bank
is cross-checked against librosa's in the tests), and a small CNN over it.

The filter bank is librosa's default: the Slaney mel scale (linear below 1 kHz, logarithmic
above), triangles normalised to equal area.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

N_FFT = 400     # 25 ms at 16 kHz
HOP = 160       # 10 ms
N_MELS = 64
_F_SP = 200.0 / 3          # Slaney: 66.67 Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    mel = hz / _F_SP
    log = hz >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    hz = _F_SP * mel
    log = mel >= _MIN_LOG_MEL
    return np.where(log, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


def mel_filters(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 0.0,
                fmax: float | None = None) -> np.ndarray:
    """float32 ``[n_mels, 1 + n_fft // 2]``: triangular filters on the Slaney mel scale, each
    normalised to unit area (``librosa.filters.mel``'s defaults)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """float ``[B, C, S]`` sound in [-1, 1] → ``[B, 1, n_mels, frames]`` log power mel spectrogram
    of its mono mix (centred frames, zero padding: librosa's ``melspectrogram`` defaults)."""

    def __init__(self, sample_rate: int, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("filters", torch.from_numpy(mel_filters(sample_rate, n_fft, n_mels)), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def power(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, frames]`` mel power (before the log)."""
        mono = audio.float().mean(dim=1)
        spec = torch.stft(mono, self.n_fft, self.hop, self.n_fft, self.window, center=True, pad_mode="constant",
                          return_complex=True)
        return torch.matmul(self.filters, spec.abs().pow(2))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.log(self.power(audio) + 1e-6).unsqueeze(1)


class AudioNet(nn.Module):
    """A small CNN over the log-mel spectrogram: three conv blocks, then the mean over time and
    frequency; ``dim`` features per clip."""

    def __init__(self, sample_rate: int, dim: int = 64) -> None:
        super().__init__()
        self.melspec = LogMel(sample_rate)
        self.norm = nn.BatchNorm2d(1)

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, 16), block(16, 32), block(32, dim))
        self.dim = dim

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.features(self.norm(self.melspec(audio)))
        return x.mean(dim=(2, 3))
