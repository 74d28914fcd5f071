"""torch.stft / torch.istft (and the Tensor methods) against torch: output shapes, dtypes
and values for centre padding modes, hop and window lengths, windows shorter than n_fft,
normalisation, one- and two-sided spectra, batches, complex input, the deprecated real
output; the inverse's round trip, ``length`` trimming and padding; gradients; errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jaxmod

torch = pytest.importorskip("torch")

_R = np.random.default_rng(0)
X = _R.standard_normal((100,)).astype(np.float32)
XB = _R.standard_normal((2, 90)).astype(np.float32)
XC = (_R.standard_normal((64,)) + 1j * _R.standard_normal((64,))).astype(np.complex64)


def _window(lib, kind, n):
    if kind is None:
        return None
    return getattr(lib, f"{kind}_window")(n)


# name: (signal, n_fft, window kind, window length, stft keywords)
STFT = {
    "default": (X, 16, None, None, {}),
    "hann": (X, 16, "hann", 16, {}),
    "hop": (X, 16, "hann", 16, {"hop_length": 5}),
    "short_window": (X, 16, "hamming", 10, {"win_length": 10}),
    "short_window_no_tensor": (X, 16, None, None, {"win_length": 9}),
    "no_center": (X, 32, "hann", 32, {"center": False, "hop_length": 8}),
    "constant_pad": (X, 16, "hann", 16, {"pad_mode": "constant"}),
    "replicate_pad": (X, 16, "hann", 16, {"pad_mode": "replicate"}),
    "circular_pad": (X, 16, "hann", 16, {"pad_mode": "circular"}),
    "normalized": (X, 16, "hann", 16, {"normalized": True}),
    "two_sided": (X, 16, "hann", 16, {"onesided": False}),
    "odd_n_fft": (X, 15, "blackman", 15, {}),
    "batch": (XB, 20, "hann", 20, {"hop_length": 7}),
    "complex_input": (XC, 16, "hann", 16, {}),
    "real_output": (X, 16, "hann", 16, {"return_complex": False}),
}  # fmt: skip


def _stft(lib, case, grad=False):
    x, n_fft, kind, wl, kw = STFT[case]
    kw = {"return_complex": True, **kw}
    t = lib.tensor(x, requires_grad=grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's return_complex=False deprecation
        return lib.stft(t, n_fft, window=_window(lib, kind, wl), **kw), t


@pytest.mark.parametrize("case", sorted(STFT))
def test_stft_matches_torch(case):
    want, _ = _stft(torch, case)
    got, _ = _stft(jaxmod, case)
    assert isinstance(got, jaxmod.Tensor)
    assert tuple(got.shape) == tuple(want.shape)
    assert got.is_complex() == want.is_complex()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_stft_method_matches_torch():
    want = torch.tensor(X).stft(16, hop_length=3, window=torch.hann_window(16),
                                return_complex=True)  # fmt: skip
    got = jaxmod.tensor(X).stft(16, hop_length=3, window=jaxmod.hann_window(16),
                                return_complex=True)  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["hann", "normalized", "batch", "two_sided"])
def test_stft_gradients_match_torch(case):
    grads = []
    for lib in (torch, jaxmod):
        s, t = _stft(lib, case, grad=True)
        w = lib.tensor(np.linspace(0, 1, s.numel(), dtype=np.float32).reshape(tuple(s.shape)))
        (s.abs() * w).sum().backward()
        grads.append(t.grad)
    np.testing.assert_allclose(grads[1].numpy(), grads[0].numpy(), rtol=1e-3, atol=1e-4)


# name: (stft case, istft keywords)
ISTFT = {
    "round_trip": ("hann", {}),
    "length_trim": ("hann", {"length": 80}),
    "length_pad": ("hann", {"length": 120}),
    "hop": ("hop", {"hop_length": 5}),
    "short_window": ("short_window", {"win_length": 10}),
    "normalized": ("normalized", {"normalized": True}),
    "two_sided": ("two_sided", {"onesided": False}),
    "two_sided_inferred": ("two_sided", {}),
    "two_sided_complex": ("two_sided", {"return_complex": True}),
    "batch": ("batch", {"hop_length": 7}),
    "batch_length": ("batch", {"hop_length": 7, "length": 90}),
    "complex_signal": ("complex_input", {"return_complex": True}),
    "rect_window_no_center": ("default", {"center": False}),
}  # fmt: skip


def _istft(lib, case):
    scase, kw = ISTFT[case]
    spec, _ = _stft(lib, scase)
    _, n_fft, kind, wl, _ = STFT[scase]
    return lib.istft(spec, n_fft, window=_window(lib, kind, wl), **kw)


@pytest.mark.parametrize("case", sorted(ISTFT))
def test_istft_matches_torch(case):
    want = _istft(torch, case)
    got = _istft(jaxmod, case)
    assert tuple(got.shape) == tuple(want.shape)
    assert got.is_complex() == want.is_complex()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_istft_inverts_stft():
    spec = jaxmod.stft(jaxmod.tensor(X), 32, window=jaxmod.hann_window(32), return_complex=True)
    back = spec.istft(32, window=jaxmod.hann_window(32), length=100)
    np.testing.assert_allclose(back.numpy(), X, atol=1e-5)


def _spec(lib):
    return lib.stft(lib.tensor(X), 16, return_complex=True)


ERRORS = {
    "return_complex_required": lambda l: l.stft(l.tensor(X), 16),
    "onesided_complex": lambda l: l.stft(l.tensor(XC), 16, onesided=True,
                                         return_complex=True),
    "istft_real_input": lambda l: l.istft(_spec(l).real, 16),
    "istft_onesided_complex_output": lambda l: l.istft(_spec(l), 16, return_complex=True),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_match_torch(case):
    with pytest.raises(RuntimeError) as want:
        ERRORS[case](torch)
    with pytest.raises(RuntimeError) as got:
        ERRORS[case](jaxmod)
    assert str(got.value) == str(want.value)


# errors whose torch message embeds the call's repr: the same reason is given
REASONS = {
    "three_dims": (lambda l: l.stft(l.ones(2, 3, 100), 16, return_complex=True),
                   "expected a 1D or 2D tensor"),
    "window_size": (lambda l: l.stft(l.tensor(X), 16, window=l.ones(5), return_complex=True),
                    "expected a 1D window tensor of size equal to win_length=16, but got "
                    "window with size [5]"),
    "n_fft_too_long": (lambda l: l.stft(l.tensor(X), 200, center=False, return_complex=True),
                       "n_fft=200"),
    "hop_zero": (lambda l: l.stft(l.tensor(X), 16, hop_length=0, return_complex=True),
                 "expected hop_length > 0, but got hop_length=0"),
    "win_too_long": (lambda l: l.stft(l.tensor(X), 16, win_length=20, return_complex=True),
                     "expected 0 < win_length <= n_fft, but got win_length=20"),
    "zero_envelope": (lambda l: l.istft(_spec(l), 16, window=l.zeros(16)),
                      "window overlap add min"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REASONS))
def test_error_reasons_match_torch(case):
    call, reason = REASONS[case]
    with pytest.raises(RuntimeError, match=None) as want:
        call(torch)
    with pytest.raises(RuntimeError) as got:
        call(jaxmod)
    assert reason in str(want.value) and reason in str(got.value)
