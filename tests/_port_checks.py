"""Parity checks for programs loaded twice by ``_torch_port`` (real torch / jaxmod).

Each check takes the torch model and the jaxmod model built from the *same source file*
(only the import lines differ) and compares:

* ``structure``: ``repr`` and ``state_dict`` keys (in order) and shapes;
* ``eval``: the eval-mode forward under ``no_grad`` (eager, op by op, as a user runs it);
* ``train``: one training step in train mode (:func:`check_step`): the output, the loss,
  the gradient of every parameter, then one optimizer step (jaxmod: the whole step under
  ``jaxmod.jit``) and the parameters and buffers (BatchNorm statistics) after it.

The helpers below are shared by the program test files: :func:`programs` and
:func:`program_pair` (a ``tests/torch_programs/`` file loaded for both libraries and a
model built from one seed), :func:`adam`, :func:`eager_step` (a step without
``jaxmod.jit``), :func:`runs_as_written` (the program's own training function runs:
``loss.backward(); optimizer.step()`` on jaxmod's autograd tape) and
:func:`check_loss_backward` (``loss.backward()`` fills ``.grad`` with what
``jaxmod.grad`` returns).

Inputs are created with each library's ``from_numpy`` (``torch.from_numpy`` /
``jaxmod.from_numpy``), as a torch user would. Dropout-like layers are given ``p = 0``
for the train step (their masks come from different generators); everything else runs
as written. Tolerances are per case: the largest absolute error allowed, relative to the
largest magnitude of torch's value.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from _torch_port import program

import jaxmod

torch.set_num_threads(1)

LIBS = {"torch": torch, "jaxmod": jaxmod}
# layers whose train-mode output is random; ``p = 0`` makes them the identity
RANDOM_LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                 "FeatureAlphaDropout", "StochasticDepth"}  # fmt: skip


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor, jaxmod Tensor / box or jax array as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, jaxmod.nn.Variable):
        return np.asarray(x._value)
    return np.asarray(x)


def leaves(out: Any) -> list[Any]:
    """The tensors of a model output (a tensor, or a (named) tuple / list / dict of them)."""
    if isinstance(out, dict):
        return [v for k in out for v in leaves(out[k])]
    if isinstance(out, (tuple, list)):
        return [v for item in out for v in leaves(item)]
    return [] if out is None else [out]


def assert_close(
    actual: Any, expected: Any, tol: float, what: str, scale: float | None = None
) -> float:
    """``max |actual - expected| <= tol * scale`` (default scale: ``max |expected|``, at
    least 1e-3 so that float32 noise on values near zero passes); returns the error over
    the scale. Gradients pass the largest gradient of the model as ``scale``: a parameter
    whose gradient is all rounding noise (a BatchNorm weight right after another
    BatchNorm) is compared at the model's scale."""
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    assert a.dtype.kind == e.dtype.kind, f"{what}: dtype {a.dtype} vs torch's {e.dtype}"
    if a.size == 0:
        return 0.0
    own = float(np.abs(e).max())
    scale = max(own, 1e-3) if scale is None else max(own, scale)
    wide = np.complex128 if e.dtype.kind == "c" else np.float64  # complex: |a - e| in C
    err = float(np.abs(a.astype(wide) - e).max())
    assert err <= tol * scale, (
        f"{what}: max abs error {err:.3g} > {tol:g} x scale {scale:.3g} (torch's max |value| "
        f"{own:.3g})"
    )
    return err / scale


def torch_state(tm: torch.nn.Module) -> dict[str, np.ndarray]:
    """torch's state_dict as numpy copies (torch updates BatchNorm statistics in place),
    with its ``_metadata`` (per-module versions: MNASNet's loader needs them)."""
    sd = tm.state_dict()
    out = OrderedDict((k, v.detach().numpy().copy()) for k, v in sd.items())
    out._metadata = sd._metadata  # type: ignore[attr-defined]
    return out


def zero_random_layers(model: Any) -> None:
    for m in model.modules():
        if type(m).__name__ in RANDOM_LAYERS:
            m.p = 0.0
        elif type(m).__name__ in ("RNN", "LSTM", "GRU"):
            m.dropout = 0.0  # the dropout between stacked recurrent layers
        elif type(m).__name__ == "MultiheadAttention":
            m.dropout = 0.0  # the dropout on the attention weights


def check_structure(tm: torch.nn.Module, jm: Any) -> None:
    assert repr(jm) == repr(tm)
    tsd, jsd = tm.state_dict(), jm.state_dict()
    assert list(jsd) == list(tsd)
    for k in tsd:
        assert tuple(jsd[k].shape) == tuple(tsd[k].shape), k


def load_torch_weights(tm: torch.nn.Module, jm: Any) -> None:
    jm.load_state_dict(torch_state(tm))


def check_eval(
    tm: torch.nn.Module,
    jm: Any,
    inputs: list[np.ndarray],
    tol: float,
    call: Callable[..., Any] | None = None,
) -> None:
    """Eval-mode forward under ``no_grad``, eagerly; torch's weights loaded first.

    ``call(lib, model, *inputs)`` (default ``model(*inputs)``) runs the forward; ``lib`` is
    ``torch`` or ``jaxmod``."""
    call = call or (lambda lib, model, *xs: model(*xs))
    load_torch_weights(tm, jm)
    tm.eval()
    jm.eval()
    with torch.no_grad():
        t_out = call(torch, tm, *[torch.from_numpy(x) for x in inputs])
    with jaxmod.no_grad():
        j_out = call(jaxmod, jm, *[jaxmod.from_numpy(x) for x in inputs])
    assert_tree_close(j_out, t_out, tol, "eval output")


def check_output_types(
    tm: torch.nn.Module, jm: Any, inputs: list[np.ndarray], call: Callable[..., Any] | None = None
) -> None:
    """The type rule on a whole model: Tensors in, Tensors out (every output tensor is a
    ``jaxmod.Tensor`` with torch's dtype), so program code after the model
    (``output.argmax(dim=1, keepdim=True)``, ``x.flatten(start_dim=1)``) has torch's methods."""
    call = call or (lambda lib, model, *xs: model(*xs))
    tm.eval()
    jm.eval()
    with torch.no_grad():
        t_out = leaves(call(torch, tm, *[torch.from_numpy(x) for x in inputs]))
    with jaxmod.no_grad():
        j_out = leaves(call(jaxmod, jm, *[jaxmod.from_numpy(x) for x in inputs]))
    for i, (j, t) in enumerate(zip(j_out, t_out, strict=True)):
        assert isinstance(j, jaxmod.Tensor), (
            f"output {i} is a {type(j).__module__}.{type(j).__name__}, not a jaxmod.Tensor"
        )
        jd, td = str(j.dtype), str(t.dtype)
        assert jd == td, f"output {i}: dtype {jd} vs torch's {td}"


def assert_tree_close(actual: Any, expected: Any, tol: float, what: str) -> None:
    """Every tensor of two outputs (a tensor or nested tuples / lists / dicts) close."""
    a, e = leaves(actual), leaves(expected)
    assert len(a) == len(e), f"{what}: {len(a)} tensors, torch has {len(e)}"
    for i, (x, y) in enumerate(zip(a, e)):
        assert_close(x, y, tol, f"{what} {i}")


def cross_entropy(F: Any, out: Any, y: Any) -> Any:
    return F.cross_entropy(out, y)


def sgd(lib: Any, model: Any) -> Any:
    return lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def adam(lib: Any, model: Any, lr: float = 0.01) -> Any:
    """Adam at ``lr`` (another rate: ``functools.partial(adam, lr=...)``)."""
    return lib.optim.Adam(model.parameters(), lr=lr)


def programs(name: str) -> dict[Any, ModuleType]:
    """The program ``tests/torch_programs/<name>.py`` loaded for torch and for jaxmod,
    keyed by the library module (the loader caches each module per mode)."""
    return {torch: program(name, "torch"), jaxmod: program(name, "jaxmod")}


def program_pair(
    name: str, build: Callable[[ModuleType, Any], Any], seed: int = 0
) -> tuple[dict[Any, ModuleType], Any, Any]:
    """The program for both libraries (:func:`programs`) and what ``build(module, lib)``
    makes of each, built after seeding each library with ``seed``; tests load torch's
    weights into jaxmod's model before comparing values."""
    mods = programs(name)
    torch.manual_seed(seed)
    tm = build(mods[torch], torch)
    jaxmod.manual_seed(seed)
    jm = build(mods[jaxmod], jaxmod)
    return mods, tm, jm


# (torch or jaxmod, model, *inputs) -> (loss, output)
LossOf = Callable[..., tuple[Any, Any]]


def _same_start(tm: torch.nn.Module, jm: Any, train: bool) -> None:
    """torch's weights in jaxmod's model, both in ``train`` mode with random layers off."""
    load_torch_weights(tm, jm)
    for m in (tm, jm):
        m.train(train)
        zero_random_layers(m)


def _torch_step(
    tm: torch.nn.Module,
    t_opt: Any,
    inputs: list[np.ndarray],
    loss_of: LossOf,
    clip: float | None = None,
) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """torch's ``zero_grad(); loss.backward(); [clip_grad_norm_]; opt.step()``: the loss,
    the output and the gradients (after clipping)."""
    t_opt.zero_grad()
    t_loss, t_out = loss_of(torch, tm, *[torch.from_numpy(x) for x in inputs])
    t_loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(tm.parameters(), clip)
    t_grads = {n: p.grad.clone() for n, p in tm.named_parameters() if p.grad is not None}
    t_opt.step()
    return t_loss, t_out, t_grads


def _check_loss_grads(j_loss: Any, t_loss: Any, j_grads: Any, t_grads: dict, tol: float) -> float:
    """The loss and every gradient, each gradient at least at the model's gradient scale
    (1% of its largest gradient), which is returned."""
    assert_close(j_loss, t_loss, tol, "loss")
    assert sorted(j_grads) == sorted(t_grads)
    g_scale = max(float(g.abs().max()) for g in t_grads.values()) * 1e-2
    for n, g in t_grads.items():
        assert_close(j_grads[n], g, tol, f"grad of {n}", g_scale)
    return g_scale


def _jaxmod_step(
    jm: Any, j_opt: Any, xs: list[Any], loss_of: LossOf, clip: float | None, backward: bool
) -> tuple[Any, Any, Any]:
    """jaxmod's step: the loss, the output and the gradients (after clipping)."""
    if backward:  # torch's loop as written, eagerly, on the autograd tape
        j_opt.zero_grad()
        loss, out = loss_of(jaxmod, jm, *xs)
        loss.backward()
        if clip is not None:
            jaxmod.nn.utils.clip_grad_norm_(jm.parameters(), clip)
        grads = {n: p.grad for n, p in jm.named_parameters() if p.grad is not None}
        j_opt.step()
        return loss, out, grads

    @jaxmod.jit
    def step(model: Any, opt: Any, *xs: Any) -> Any:
        (loss, out), grads = jaxmod.value_and_grad(lambda m: loss_of(jaxmod, m, *xs), has_aux=True)(
            model
        )
        if clip is not None:
            jaxmod.nn.utils.clip_grad_norm_(grads, clip)
        opt.step(grads)
        return loss, out, grads

    return step(jm, j_opt, *xs)


def check_step(
    tm: torch.nn.Module,
    jm: Any,
    inputs: list[np.ndarray],
    loss_of: LossOf,
    tol: float,
    make_opt: Callable[[Any, Any], Any] = sgd,
    clip: float | None = None,
    train: bool = True,
    backward: bool = False,
) -> None:
    """One optimizer step on both models from the same weights.

    torch runs ``zero_grad(); loss.backward(); [clip_grad_norm_]; opt.step()``; jaxmod runs
    ``value_and_grad`` of the same ``loss_of`` and ``opt.step(grads)``, all in one
    ``jaxmod.jit`` -- or, with ``backward=True``, torch's own eager loop as written
    (``loss.backward()`` on jaxmod's autograd tape). Compared: output, loss, every gradient
    (after clipping), the update of every parameter, and every buffer after the step.
    """
    _same_start(tm, jm, train)
    before = {n: p.detach().numpy().copy() for n, p in tm.named_parameters()}
    t_loss, t_out, t_grads = _torch_step(tm, make_opt(torch, tm), inputs, loss_of, clip)
    xs = [jaxmod.from_numpy(x) for x in inputs]
    j_loss, j_out, j_grads = _jaxmod_step(jm, make_opt(jaxmod, jm), xs, loss_of, clip, backward)
    assert_tree_close(j_out, t_out, tol, "train output")
    g_scale = _check_loss_grads(j_loss, t_loss, j_grads, t_grads, tol)
    j_params = dict(jm.named_parameters())
    steps = {n: p.detach().numpy() - before[n] for n, p in tm.named_parameters()}
    s_scale = max(float(np.abs(d).max()) for d in steps.values()) * 1e-2
    for n, d in steps.items():
        # the update itself (a 0.1 x grad change hides in the weight's magnitude), known to
        # within the float32 spacing of the weights it is the difference of
        ulp = 2 * float(np.finfo(np.float32).eps * np.abs(before[n]).max(initial=0)) / tol
        d_j = to_numpy(j_params[n]) - before[n]
        if n in t_grads:
            # Adam-style updates divide by the gradient's own size, so for an element whose
            # gradient is rounding noise (compared above, at the model's gradient scale) the
            # update is noise too: those elements are left out of the update comparison
            noise = np.abs(t_grads[n].numpy()) < g_scale * 1e-1
            d_j = np.where(noise, d, d_j)
        assert_close(d_j, d, tol, f"{n} step", max(s_scale, ulp))
    j_buffers = dict(jm.named_buffers())
    for n, b in tm.named_buffers():
        assert_close(j_buffers[n], b, tol, f"buffer {n}")


def eager_step(
    tm: torch.nn.Module, jm: Any, inputs: list[np.ndarray], loss_of: LossOf, tol: float
) -> None:
    """One SGD step run eagerly (``jaxmod.value_and_grad`` without ``jaxmod.jit``, as a
    user steps a model whose forward needs concrete values): loss, gradients and the
    parameters after the step equal torch's."""
    _same_start(tm, jm, True)
    t_loss, _, t_grads = _torch_step(tm, torch.optim.SGD(tm.parameters(), lr=1.0), inputs, loss_of)
    xs = [jaxmod.from_numpy(x) for x in inputs]
    (j_loss, _), j_grads = jaxmod.value_and_grad(lambda m: loss_of(jaxmod, m, *xs), has_aux=True)(
        jm
    )
    jaxmod.optim.SGD(jm.parameters(), lr=1.0).step(j_grads)
    _check_loss_grads(j_loss, t_loss, j_grads, t_grads, tol)
    j_params = dict(jm.named_parameters())
    for n, p in tm.named_parameters():
        assert_close(j_params[n], p, tol, f"{n} after the step")


def runs_as_written(run: Callable[[ModuleType], Any], name: str) -> None:
    """``run(module)`` (the program's training function, run as written on jaxmod's
    ``name`` program: ``loss.backward(); optimizer.step()``) completes, having run at least
    one ``backward()``, and every float it returns is finite."""
    from jaxmod._tensor import tape

    before = tape._S.backwards
    out = run(program(name, "jaxmod"))
    assert tape._S.backwards > before, "the program's training function ran no backward()"
    for v in leaves(out):
        if isinstance(v, float):
            assert np.isfinite(v), f"the training function returned {v}"


def check_loss_backward(model: Any, loss_fn: Callable[[Any], Any], tol: float) -> None:
    """``loss_fn(model).backward()`` (a loss the program computes, a ``jaxmod.Tensor``)
    leaves on every parameter the gradient ``jaxmod.grad(loss_fn)(model)`` returns (whose
    parity with torch the program's ``train`` aspect checks)."""
    model.zero_grad()
    loss = loss_fn(model)
    assert isinstance(loss, jaxmod.Tensor) and loss.requires_grad
    loss.backward()
    want = jaxmod.grad(loss_fn)(model)
    scale = max(float(np.abs(to_numpy(g)).max()) for g in want.values()) * 1e-2
    for n, p in model.named_parameters():
        assert p.grad is not None, f"{n}: no .grad after loss.backward()"
        assert_close(p.grad, want[n], tol, f".grad of {n}", scale)


def rng_inputs(*shapes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def labels(n: int, classes: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n).astype(np.int64)


def describe(exc: BaseException) -> str:
    """``Type: message`` (first line, file paths dropped) of an exception, for xfail reasons
    and the gap report."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return re.sub(r" \(/[^)]*\)", "", text)


def case_params(
    aspects: dict[str, tuple[str, ...]],
    xfail: dict[tuple[str, str], str],
    skip: Callable[[str, str], str | None] = lambda name, aspect: None,
) -> list[Any]:
    """``pytest.param(name, aspect)`` for every case: ``xfail(strict=True)`` with the
    recorded error where one is in ``xfail``, skipped where ``skip`` gives a reason."""
    out = []
    for name, names in aspects.items():
        for aspect in names:
            marks = []
            if (name, aspect) in xfail:
                marks.append(pytest.mark.xfail(strict=True, reason=xfail[name, aspect]))
            reason = skip(name, aspect)
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
            out.append(pytest.param(name, aspect, marks=marks, id=f"{name}-{aspect}"))
    return out


def unmodified(aspects: dict[str, tuple[str, ...]], xfail: dict) -> list[str]:
    """The cases none of whose aspects is an expected failure."""
    return [n for n, names in aspects.items() if not any((n, a) in xfail for a in names)]


def report_unmodified(what: str, names: list[str], total: int) -> Any:
    """An autouse module fixture that prints ``what that run unmodified: k/n (names)`` in
    the terminal summary."""

    @pytest.fixture(scope="module", autouse=True)
    def _report(request: pytest.FixtureRequest) -> Any:
        yield
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            listed = f" ({', '.join(names)})" if names else ""
            reporter.write_line(
                f"{what} that run unmodified on jaxmod: {len(names)}/{total}{listed}"
            )

    return _report
