"""``torch.stft`` and ``torch.istft`` on arrays (``jnp.fft``): torch's framing, centre
padding, window padding, normalisation and output layout ``(..., freq, frames)``; the
inverse is torch's windowed overlap-add divided by the window envelope."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b

_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge",
              "circular": "wrap"}  # fmt: skip


def _window(window: Any, win_length: int, n_fft: int, dtype: Any, api: str) -> Any:
    """The window (ones by default) zero-padded on both sides to ``n_fft``."""
    if window is None:
        w = jnp.ones((win_length,), dtype)
    else:
        w = jnp.asarray(_b.unwrap(window))
        if w.ndim != 1 or w.shape[0] != win_length:
            raise RuntimeError(
                f"{api}: expected a 1D window tensor of size equal to win_length="
                f"{win_length}, but got window with size {list(w.shape)}"
            )
    left = (n_fft - win_length) // 2
    return jnp.pad(w, (left, n_fft - win_length - left))


def _lengths(n_fft: int, hop_length: int | None, win_length: int | None,
             api: str) -> tuple[int, int]:  # fmt: skip
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if hop <= 0:
        raise RuntimeError(f"{api}: expected hop_length > 0, but got hop_length={hop}")
    if not 0 < win <= n_fft:
        raise RuntimeError(f"{api}: expected 0 < win_length <= n_fft, but got win_length={win}")
    return hop, win


def _complex(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.complexfloating)


def stft(input: Any, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window: Any = None, center: bool = True, pad_mode: str = "reflect",
         normalized: bool = False, onesided: bool | None = None,
         return_complex: bool | None = None,
         align_to_window: bool | None = None) -> Any:  # fmt: skip
    """The short-time Fourier transform of a 1-D signal or a batch of them
    (``torch.stft``): ``(..., n_fft // 2 + 1, frames)`` complex (``n_fft`` rows when not
    ``onesided``); ``return_complex=False`` gives torch's deprecated real ``(..., 2)``."""
    x = jnp.asarray(_b.unwrap(input))
    w_in = None if window is None else jnp.asarray(_b.unwrap(window))
    is_complex = _complex(x) or (w_in is not None and _complex(w_in))
    if return_complex is None and not is_complex:
        raise RuntimeError(
            "stft requires the return_complex parameter be given for real inputs, and will "
            "further require that return_complex=True in a future PyTorch release."
        )
    if center and align_to_window is not None:
        raise ValueError("stft align_to_window should only be set when center = false")
    api = "stft"
    if x.ndim not in (1, 2):
        raise RuntimeError(f"{api}: expected a 1D or 2D tensor")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    hop, win = _lengths(n_fft, hop_length, win_length, api)
    if center:
        if pad_mode not in _PAD_MODES:
            raise NotImplementedError(f"stft: pad_mode {pad_mode!r} is not supported")
        pad = n_fft // 2
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode=_PAD_MODES[pad_mode])
    n = x.shape[-1]
    if not 0 < n_fft <= n:
        raise RuntimeError(f"{api}: expected 0 < n_fft < {n}, but got n_fft={n_fft}")
    real_dtype = jnp.real(jnp.zeros((), x.dtype)).dtype
    w = _window(w_in, win, n_fft, real_dtype if w_in is None else w_in.dtype, api)
    if onesided is None:
        onesided = not is_complex
    elif onesided and is_complex:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    frames = 1 + (n - n_fft) // hop
    idx = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]
    segs = x[..., idx] * w  # (..., frames, n_fft)
    spec = jnp.fft.rfft(segs, axis=-1) if onesided else jnp.fft.fft(segs, axis=-1)
    if normalized:
        spec = spec * (1.0 / np.sqrt(n_fft))
    spec = jnp.swapaxes(spec, -1, -2)
    if not return_complex and return_complex is not None:
        return jnp.stack([jnp.real(spec), jnp.imag(spec)], -1)
    return spec


def istft(input: Any, n_fft: int, hop_length: int | None = None,
          win_length: int | None = None, window: Any = None, center: bool = True,
          normalized: bool = False, onesided: bool | None = None, length: int | None = None,
          return_complex: bool = False) -> Any:  # fmt: skip
    """The inverse of :func:`stft` (``torch.istft``): inverse FFT of each frame, windowed
    overlap-add, divided by the overlap-added squared window; ``length`` trims or
    zero-pads the signal."""
    spec = jnp.asarray(_b.unwrap(input))
    if not _complex(spec):
        raise RuntimeError(
            "istft requires a complex-valued input tensor matching the output from stft "
            "with return_complex=True."
        )
    api = "istft"
    if spec.ndim not in (2, 3):
        raise RuntimeError(f"{api}: expected a tensor with 2 or 3 dimensions of complex dtype")
    hop, win = _lengths(n_fft, hop_length, win_length, api)
    w_in = None if window is None else jnp.asarray(_b.unwrap(window))
    real_dtype = jnp.real(spec).dtype
    w = _window(w_in, win, n_fft, real_dtype if w_in is None else w_in.dtype, api)
    freqs, frames = spec.shape[-2:]
    if onesided is None:
        onesided = freqs != n_fft
    if onesided:
        if return_complex or (w_in is not None and _complex(w_in)):
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        if freqs != n_fft // 2 + 1:
            raise RuntimeError(
                f"{api}: expected the frequency dimension (3rd to the last) of the input "
                f"tensor to match n_fft / 2 + 1 when onesided=True, but got {freqs}"
            )
    elif freqs != n_fft:
        raise RuntimeError(
            f"{api}: expected the frequency dimension (3rd to the last) of the input tensor "
            f"to match n_fft when onesided=False, but got {freqs}"
        )
    segs = jnp.swapaxes(spec, -1, -2)  # (..., frames, freq)
    if normalized:
        segs = segs * np.sqrt(n_fft)
    if onesided:
        segs = jnp.fft.irfft(segs, n=n_fft, axis=-1)
    else:
        segs = jnp.fft.ifft(segs, axis=-1)
        if not return_complex:
            segs = jnp.real(segs)  # torch checks the result is real; it keeps the real part
    segs = segs * w
    total = n_fft + hop * (frames - 1)
    idx = (np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]).ravel()
    y = jnp.zeros(segs.shape[:-2] + (total,), segs.dtype).at[..., idx].add(
        segs.reshape(segs.shape[:-2] + (-1,)))  # fmt: skip
    env = jnp.zeros((total,), w.dtype).at[idx].add(jnp.tile(jnp.abs(w) ** 2, frames))
    start = n_fft // 2 if center else 0
    end = start + length if length is not None else (total - n_fft // 2 if center else total)
    y, env = y[..., start : min(end, total)], env[start : min(end, total)]
    lowest = jnp.min(jnp.abs(env)) if env.size else jnp.zeros(())
    if not isinstance(lowest, jax.core.Tracer) and float(lowest) < 1e-11:
        raise RuntimeError(f"{api}: window overlap add min: {float(lowest):g}")
    y = y / env
    if end > total:
        y = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, end - total)])
    return y


SIGNAL: dict[str, Any] = {"stft": stft, "istft": istft}
METHODS = ("stft", "istft")
