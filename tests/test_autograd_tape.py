"""The eager autograd tape: ``loss.backward()`` fills ``.grad`` as torch's autograd does.

Every case runs the same program in torch 2.13 and in jaxmod (``lib`` is ``torch`` or
``jaxmod``) and compares the gradients that ``backward()`` leaves on the leaves, the
flags torch programs read (``requires_grad``, ``is_leaf``, ``grad_fn``), the errors torch
raises (type and message), and whole eager training loops
(``zero_grad(); loss.backward(); opt.step()``) step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import torch
from _port_checks import assert_close, load_torch_weights, to_numpy

import jaxmod
from jaxmod._tensor import tape

torch.set_num_threads(1)

TOL = 2e-5
_rng = np.random.default_rng(0)
X = _rng.standard_normal((3, 4)).astype(np.float32)
W = _rng.standard_normal((4, 5)).astype(np.float32)
Y = np.array([1, 0, 4], np.int64)


def _leaves(lib: Any) -> tuple[Any, Any]:
    x = lib.tensor(X, requires_grad=True)
    w = lib.tensor(W, requires_grad=True)
    return x, w


def _setitem(lib: Any, x: Any, w: Any) -> Any:
    b = lib.zeros(3, 5)
    b[0] = (x @ w)[0] * 2
    b[1:, 1] = x[1:, 0]
    return (b * b).sum()


def _inplace(lib: Any, x: Any, w: Any) -> Any:
    y = x @ w
    y.add_(1.0)
    y.mul_(3.0).clamp_(min=-2.0)
    y += x.sum()
    return y.mean()


def _no_grad_part(lib: Any, x: Any, w: Any) -> Any:
    with lib.no_grad():
        c = x * 2
    return (x * c).sum() + (w * w.detach()).sum()


# (name, fn(lib, x, w) -> scalar loss): x (3, 4) and w (4, 5) require grad
TENSOR_CASES: list[tuple[str, Callable[..., Any]]] = [
    ("square", lambda lib, x, w: (x * x).sum()),
    ("matmul_relu_mean", lambda lib, x, w: (x @ w).relu().mean()),
    ("methods_chain", lambda lib, x, w: x.view(-1).softmax(0).log().sum() + w.t().tanh().sum()),
    ("transpose_max", lambda lib, x, w: x.transpose(0, 1).contiguous().max(dim=0).values.sum()),
    (
        "cat_where",
        lambda lib, x, w: (
            lib.where(x > 0, x, x * 0.1).sum() + lib.cat([x, x * 2], 1).sigmoid().sum()
        ),
    ),  # fmt: skip
    ("reuse", lambda lib, x, w: (lambda a: (a * a + a).sum())(x.exp())),
    ("getitem", lambda lib, x, w: x[:, 1:].sum() + x[0, 0] * w[1, 2]),
    ("cross_entropy", lambda lib, x, w: lib.nn.functional.cross_entropy(x @ w, lib.tensor(Y))),
    ("reductions", lambda lib, x, w: x.std(dim=1).sum() + w.norm() + x.logsumexp(-1).mean()),
    ("setitem_into_plain_tensor", _setitem),
    ("inplace_on_computed", _inplace),
    ("no_grad_and_detach", _no_grad_part),
    (
        "functions",
        lambda lib, x, w: (
            lib.einsum("ij,jk->ik", x, w).pow(2).sum()
            + lib.stack([x, x]).amax()
            + lib.matmul(x, w).softmax(-1)[:, 0].sum()
        ),
    ),  # fmt: skip
]


@pytest.mark.parametrize("name,fn", TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_backward_fills_leaf_grads_like_torch(name: str, fn: Callable[..., Any]) -> None:
    got = {}
    for lib in (torch, jaxmod):
        x, w = _leaves(lib)
        loss = fn(lib, x, w)
        assert loss.requires_grad and not loss.is_leaf and loss.grad_fn is not None
        loss.backward()
        got[lib] = (loss, x.grad, w.grad)
    for what, a, e in zip(("loss", "x.grad", "w.grad"), got[jaxmod], got[torch]):
        if e is None:
            assert a is None, f"{what}: torch leaves None"
        else:
            assert isinstance(a, jaxmod.Tensor), what
            assert_close(a, e, TOL, what)


# ----------------------------------------------------------------------------- modules
def _mlp(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.0),
                         nn.Linear(8, 3))  # fmt: skip


class _ConvNet:
    @staticmethod
    def build(lib: Any) -> Any:
        nn = lib.nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))  # fmt: skip


def _lstm_head(lib: Any) -> Any:
    nn = lib.nn

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(7, 6)
            self.rnn = nn.LSTM(6, 5, batch_first=True)
            self.head = nn.Linear(5, 7)
            self.head.weight = nn.Parameter(lib.randn(7, 5))

        def forward(self, x: Any) -> Any:
            out, _ = self.rnn(self.emb(x))
            return self.head(out[:, -1])

    return M()


def _tied(lib: Any) -> Any:
    nn = lib.nn

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(7, 6)
            self.block = nn.TransformerEncoderLayer(6, 2, 12, dropout=0.0, batch_first=True)
            self.head = nn.Linear(6, 7, bias=False)
            self.head.weight = self.emb.weight  # tied, as word LMs do

        def forward(self, x: Any) -> Any:
            return self.head(self.block(self.emb(x))).mean(1)

    return M()


_IMG = _rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
_TOK = _rng.integers(0, 7, (2, 5)).astype(np.int64)
# (name, build(lib), input, labels)
MODULE_CASES = [
    ("mlp_batchnorm", _mlp, X, Y % 3),
    ("convnet", _ConvNet.build, _IMG, Y[:2] % 3),
    ("lstm", _lstm_head, _TOK, Y[:2]),
    ("tied_transformer", _tied, _TOK, Y[:2]),
]


def _pair(build: Callable[[Any], Any]) -> tuple[Any, Any]:
    torch.manual_seed(0)
    tm = build(torch)
    jm = build(jaxmod)
    load_torch_weights(tm, jm)
    return tm, jm


def _loss(lib: Any, model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    return lib.nn.functional.cross_entropy(model(lib.from_numpy(x)), lib.from_numpy(y))


@pytest.mark.parametrize("name,build,x,y", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_eager_training_loop_matches_torch(name: str, build: Any, x: Any, y: Any) -> None:
    """Three steps of ``zero_grad(); loss.backward(); clip_grad_norm_; opt.step()``
    (SGD with momentum): the loss, every gradient, the parameters and the buffers (batch
    statistics counted once per forward) after each step."""
    tm, jm = _pair(build)
    opts = {torch: torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9),
            jaxmod: jaxmod.optim.SGD(jm.parameters(), lr=0.1, momentum=0.9)}  # fmt: skip
    for step in range(3):
        res = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            opts[lib].zero_grad()
            loss = _loss(lib, model, x, y)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            grads = {n: p.grad for n, p in model.named_parameters()}
            opts[lib].step()
            res[lib] = loss, grads
        assert_close(res[jaxmod][0], res[torch][0], TOL, f"step {step} loss")
        for n, g in res[torch][1].items():
            assert_close(res[jaxmod][1][n], g, 1e-4, f"step {step} grad of {n}", 1e-2)
    j_state = jm.state_dict()
    for n, v in tm.state_dict().items():
        assert_close(j_state[n], v, 1e-4, f"{n} after 3 steps")


def test_module_output_flags_match_torch() -> None:
    tm, jm = _pair(_mlp)
    for lib, model in ((torch, tm), (jaxmod, jm)):
        out = model(lib.from_numpy(X))
        assert (out.requires_grad, out.is_leaf, out.grad_fn is not None) == (True, False, True)
        with lib.no_grad():
            quiet = model(lib.from_numpy(X))
        assert (quiet.requires_grad, quiet.is_leaf, quiet.grad_fn) == (False, True, None)
        assert not out.detach().requires_grad
        assert repr(out.sum()).endswith("grad_fn=<SumBackward0>)")


# A leaf made from a view: torch's PINN idiom (``linspace(...).unsqueeze(1).requires_grad_()``)
VIEW_LEAVES: list[tuple[str, Callable[[Any], Any]]] = [
    ("unsqueeze_requires_grad_", lambda lib: lib.linspace(0, 1, 5).unsqueeze(1).requires_grad_()),
    ("reshape_requires_grad_", lambda lib: lib.ones(4).reshape(2, 2).requires_grad_(True)),
    ("getitem_none_flag", lambda lib: _flagged(lib.arange(4.0)[None])),
    ("view_flag", lambda lib: _flagged(lib.arange(6.0).view(2, 3))),
]


def _flagged(t: Any) -> Any:
    t.requires_grad = True
    return t


@pytest.mark.parametrize("name,make", VIEW_LEAVES, ids=[c[0] for c in VIEW_LEAVES])
def test_a_view_given_requires_grad_is_a_leaf_like_torch(name: str, make: Any) -> None:
    got = {}
    for lib in (torch, jaxmod):
        x = make(lib)
        assert x.is_leaf and x.requires_grad
        y = (x * x).sin()
        (dx,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (d2x,) = lib.autograd.grad(dx.sum(), x)
        (x.exp() * 2).sum().backward()
        got[lib] = (dx.detach(), d2x, x.grad)
        x.requires_grad_(False)
        assert not (x * 2).requires_grad
    for what, a, e in zip(("dx", "d2x", "x.grad"), got[jaxmod], got[torch]):
        assert_close(a, e, TOL, what)


def _teacher_student(lib: Any, decorator: Any) -> tuple[Any, Any]:
    nn = lib.nn

    class Teacher(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 5)

        @decorator(lib)
        def forward(self, x: Any) -> Any:
            return self.fc(x)

    return Teacher(), nn.Linear(4, 5)


GRAD_DECORATORS = [
    ("no_grad_call", lambda lib: lib.no_grad()),
    ("no_grad_bare", lambda lib: lib.no_grad),
    ("inference_mode_call", lambda lib: lib.inference_mode()),
    ("inference_mode_bare", lambda lib: lib.inference_mode),
]


@pytest.mark.parametrize("name,decorator", GRAD_DECORATORS, ids=[c[0] for c in GRAD_DECORATORS])
def test_forward_decorated_with_no_grad_records_nothing_like_torch(name: str, decorator: Any):
    for lib in (torch, jaxmod):
        teacher, student = _teacher_student(lib, decorator)
        x = lib.from_numpy(X)
        target = teacher(x)
        assert not target.requires_grad and target.grad_fn is None, lib.__name__
        ((student(x) - target) ** 2).mean().backward()
        assert teacher.fc.weight.grad is None and student.weight.grad is not None
        plain = decorator(lib)(lambda t: t * 2)(lib.ones(2, requires_grad=True))
        assert isinstance(plain, lib.Tensor) and not plain.requires_grad
        assert lib.is_grad_enabled()


def test_dropout_replay_uses_the_masks_of_the_forward() -> None:
    """Backward replays the forward with the generator state it ran under: the gradient
    of a dropout output is exactly its mask, scaled."""
    x = jaxmod.ones(200, requires_grad=True)
    y = jaxmod.nn.functional.dropout(x, 0.5, training=True)
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), to_numpy(y))


def test_gradients_accumulate_until_zero_grad() -> None:
    grads = {}
    for lib in (torch, jaxmod):
        x, w = _leaves(lib)
        (x @ w).sum().backward()
        (x * 3).sum().backward()
        grads[lib] = x.grad
    assert_close(grads[jaxmod], grads[torch], TOL, "accumulated grad")


def test_retain_grad_and_autograd_grad_of_intermediates_match_torch() -> None:
    got = {}
    for lib in (torch, jaxmod):
        x, w = _leaves(lib)
        h = x @ w
        h.retain_grad()
        loss = h.tanh().sum()
        gh, gx = lib.autograd.grad(loss, [h, x], retain_graph=True)
        loss.backward()
        got[lib] = (h.grad, gh, gx, x.grad)
    for what, a, e in zip(("h.grad", "grad h", "grad x", "x.grad"), got[jaxmod], got[torch]):
        assert_close(a, e, TOL, what)


def test_autograd_grad_of_unused_input_follows_allow_unused() -> None:
    for lib in (torch, jaxmod):
        x, w = _leaves(lib)
        loss = (x * 2).sum()
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            lib.autograd.grad(loss, [x, w], retain_graph=True)
        assert lib.autograd.grad(loss, [x, w], allow_unused=True)[1] is None


def _message(fn: Callable[[], Any]) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


def _backward_twice(lib: Any) -> Any:
    x, w = _leaves(lib)
    loss = (x @ w).sum()
    loss.backward()
    loss.backward()


def _no_grad_output(lib: Any) -> Any:
    x, _ = _leaves(lib)
    with lib.no_grad():
        loss = (x * 2).sum()
    loss.backward()


def _leaf_in_place(lib: Any) -> Any:
    x, _ = _leaves(lib)
    x.add_(1.0)


def _param_in_place(lib: Any) -> Any:
    lib.nn.Linear(2, 2).weight.mul_(2.0)


def _computed_flag_off(lib: Any) -> Any:
    x, _ = _leaves(lib)
    (x * 2).requires_grad = False


def _non_scalar(lib: Any) -> Any:
    x, _ = _leaves(lib)
    (x * 2).backward()


# (name, fn(lib)): torch raises; jaxmod raises the same type with torch's message first
ERROR_CASES = [
    ("backward_twice", _backward_twice),
    ("no_grad_output", _no_grad_output),
    ("leaf_in_place", _leaf_in_place),
    ("parameter_in_place", _param_in_place),
    ("computed_requires_grad_off", _computed_flag_off),
    ("non_scalar_without_gradient", _non_scalar),
]


@pytest.mark.parametrize("name,fn", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_match_torch(name: str, fn: Callable[[Any], Any]) -> None:
    t_type, t_msg = _message(lambda: fn(torch))
    j_type, j_msg = _message(lambda: fn(jaxmod))
    assert j_type is t_type
    head = t_msg.split(".")[0].split(" (")[0]
    assert j_msg.startswith(head), (j_msg, t_msg)


def test_retain_graph_allows_a_second_backward() -> None:
    got = {}
    for lib in (torch, jaxmod):
        x, w = _leaves(lib)
        loss = (x @ w).pow(2).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        got[lib] = x.grad
    assert_close(got[jaxmod], got[torch], TOL, "x.grad after two backwards")


def test_backward_with_create_graph_names_autograd_grad() -> None:
    x, _ = _leaves(jaxmod)
    with pytest.raises(tape.TapeError, match="autograd.grad"):
        (x * x).sum().backward(create_graph=True)


def _gradient_penalty_step(lib: Any, D: Any, G: Any) -> Any:
    """A WGAN-GP critic loss: the gradient of the critic at interpolates, taken with
    ``create_graph=True``, enters the loss that ``backward()`` differentiates."""
    real = lib.from_numpy(X[:2, :3])
    fake = G(lib.from_numpy(W[:2, :2]))
    alpha = lib.tensor([[0.3], [0.8]])
    xh = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    d = D(xh)
    (g,) = lib.autograd.grad(outputs=d, inputs=xh, grad_outputs=lib.ones_like(d),
                             create_graph=True, retain_graph=True)  # fmt: skip
    gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
    loss = D(fake.detach()).mean() - D(real).mean() + 10 * gp
    loss.backward()
    return loss


def test_gradient_penalty_with_create_graph_matches_torch_and_compiles_once() -> None:
    got, models = {}, {}
    for lib in (torch, jaxmod):
        torch.manual_seed(0)
        models[lib] = (lib.nn.Sequential(lib.nn.Linear(3, 8), lib.nn.Tanh(),
                                         lib.nn.Linear(8, 1)), lib.nn.Linear(2, 3))  # fmt: skip
    load_torch_weights(models[torch][0], models[jaxmod][0])
    load_torch_weights(models[torch][1], models[jaxmod][1])
    tape._COMPILED.clear()
    tape._FAMILIES.clear()
    for step in range(3):
        for lib, (D, G) in models.items():
            D.zero_grad()
            loss = _gradient_penalty_step(lib, D, G)
            got[lib] = loss, {n: p.grad for n, p in D.named_parameters()}
        if step == 0:
            compiled = len(tape._COMPILED)
        assert_close(got[jaxmod][0], got[torch][0], TOL, f"step {step} loss")
        for n, g in got[torch][1].items():
            assert_close(got[jaxmod][1][n], g, 1e-4, f"step {step} grad of {n}")
    assert len(tape._COMPILED) == compiled


def test_backward_inside_jaxmod_jit_names_value_and_grad() -> None:
    model = jaxmod.nn.Linear(4, 2)

    @jaxmod.jit
    def step(m: Any, x: Any) -> Any:
        loss = m(x).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="value_and_grad"):
        step(model, jaxmod.from_numpy(X))


def test_write_through_a_view_with_graph_values_is_refused() -> None:
    x, _ = _leaves(jaxmod)
    buf = jaxmod.zeros(3, 4)
    view = buf[0]
    with pytest.raises(tape.TapeError, match="view"):
        view.add_(x[0])


def test_training_loop_compiles_its_backward_once() -> None:
    """The replay is compiled per graph structure: steps two and three reuse step one's
    executable (a changing learning rate included)."""
    model = _mlp(jaxmod)
    opt = jaxmod.optim.SGD(model.parameters(), lr=0.1)
    tape._COMPILED.clear()
    tape._FAMILIES.clear()
    for step in range(3):
        opt.param_groups[0]["lr"] = 0.1 / (step + 1)
        opt.zero_grad()
        _loss(jaxmod, model, X, Y % 3).backward()
        opt.step()
    assert len(tape._COMPILED) == 1
    (compiled,) = tape._COMPILED.values()
    assert compiled._cache_size() == 1


def test_parameters_a_forward_does_not_use_keep_grad_none_like_torch() -> None:
    """A module call records all its parameters; those the output does not depend on get
    no ``.grad`` (so optimizers skip them, as torch's do)."""
    seen = {}
    for lib in (torch, jaxmod):

        class M(lib.nn.Module):
            def __init__(self, nn: Any = lib.nn) -> None:
                super().__init__()
                self.used = nn.Linear(4, 2)
                self.unused = nn.Linear(4, 2)

            def forward(self, x: Any) -> Any:
                return self.used(x)

        m = M()
        m(lib.from_numpy(X)).sum().backward()
        seen[lib] = {n: p.grad is None for n, p in m.named_parameters()}
    assert seen[jaxmod] == seen[torch] == {
        "used.weight": False, "used.bias": False, "unused.weight": True, "unused.bias": True
    }  # fmt: skip


def test_observing_forward_hooks_run_once_per_forward_like_torch() -> None:
    """A hook that returns None and changes nothing (it stores what it sees) runs once per
    forward, as in torch, so what it stored is concrete after backward(); a hook that
    replaces the output runs in backward()'s replay too (``is_replaying()`` True), so the
    gradient sees it; attributes a forward sets on its module keep the forward's values."""
    calls, stored, scaled = [], [], []

    class Net(jaxmod.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = jaxmod.nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            out = self.fc(x)
            self.last = out.detach()
            return out

    def observe(module: Any, inputs: Any, output: Any) -> None:
        calls.append(jaxmod.autograd.is_replaying())
        stored.append(output.detach())

    def double(module: Any, inputs: Any, output: Any) -> Any:
        scaled.append(jaxmod.autograd.is_replaying())
        return output * 2

    model = Net()
    model.fc.register_forward_hook(observe)
    model.fc.register_forward_pre_hook(lambda m, inputs: stored.append(inputs[0].detach()))
    model.fc.register_forward_hook(double)
    for _ in range(2):
        model.zero_grad()
        model(jaxmod.from_numpy(X)).sum().backward()
    assert calls == [False, False] and scaled[:2] == [False, True]
    assert len(stored) == 4
    assert not any(isinstance(t._value, jax.core.Tracer) for t in [*stored, model.last])
    assert_close(model.fc.bias.grad, np.full(2, 2.0 * len(X)), TOL, "doubled output's grad")
    assert_close(model.last, model.fc(jaxmod.from_numpy(X)).detach(), TOL, "last")


def test_losses_a_forward_stores_on_its_modules_backpropagate_like_torch() -> None:
    """Style transfer's ``self.loss = F.mse_loss(...)`` inside ``forward`` and a mixture of
    experts' ``self.aux_loss``: tensors stored on submodules during the outermost call are
    outputs of its record, so a loss summed from them reaches the parameters, as in torch
    (and the next step compiles nothing new)."""
    got = {}
    for lib in (torch, jaxmod):

        class Probe(lib.nn.Module):
            def __init__(self, lib: Any = lib) -> None:
                super().__init__()
                self.fc = lib.nn.Linear(4, 4)
                self.mse = lib.nn.functional.mse_loss

            def forward(self, x: Any) -> Any:
                y = self.fc(x)
                self.loss = self.mse(y, x)
                return y

        torch.manual_seed(0)
        got[lib] = lib.nn.Sequential(Probe(), lib.nn.Tanh(), Probe())
    load_torch_weights(got[torch], got[jaxmod])
    for step in range(2):
        grads = {}
        for lib, model in got.items():
            model.zero_grad()
            model(lib.from_numpy(X))
            loss = model[0].loss + 2 * model[2].loss
            assert loss.requires_grad and loss.grad_fn is not None
            loss.backward()
            grads[lib] = {n: p.grad for n, p in model.named_parameters()}
        for name, g in grads[torch].items():
            assert_close(grads[jaxmod][name], g, TOL, f"step {step}: {name}")


def test_module_backward_hooks_run_once_with_values_like_torch() -> None:
    """A graph through a module with full backward (pre-)hooks is differentiated eagerly:
    the hooks run once per backward(), see Tensors with torch's values, and a hook that
    returns a new grad_input changes the gradients upstream, as in torch."""
    got = {}
    for lib in (torch, jaxmod):
        torch.manual_seed(0)
        got[lib] = {"model": lib.nn.Sequential(lib.nn.Linear(4, 5), lib.nn.Tanh(),
                                               lib.nn.Linear(5, 3))}  # fmt: skip
    load_torch_weights(got[torch]["model"], got[jaxmod]["model"])
    for lib, rec in got.items():
        m, seen = rec["model"], []

        def pre(mod: Any, go: Any, seen: list = seen) -> None:
            seen.append(("pre", go[0] * 1))

        def full(mod: Any, gi: Any, go: Any, seen: list = seen) -> None:
            seen.append(("full", gi[0] * 1))

        m[2].register_full_backward_pre_hook(pre)
        m[2].register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0.5,))
        m[1].register_full_backward_hook(full)
        x = lib.tensor(X, requires_grad=True)
        m(x).pow(2).sum().backward()
        rec.update(seen=seen, grad=m[0].weight.grad, x=x.grad)
    assert [k for k, _ in got[jaxmod]["seen"]] == [k for k, _ in got[torch]["seen"]]
    for (_, a), (_, e) in zip(got[jaxmod]["seen"], got[torch]["seen"]):
        assert isinstance(a, jaxmod.Tensor)
        assert_close(a, e, TOL, "hook gradient")
    assert_close(got[jaxmod]["grad"], got[torch]["grad"], TOL, "0.weight.grad (halved)")
    assert_close(got[jaxmod]["x"], got[torch]["x"], TOL, "x.grad (halved)")


def _hooked_losses(lib: Any) -> tuple[list, Any, Any]:
    """Tensor hooks as programs use them: one that records an activation's gradient
    (Grad-CAM), one that scales a gradient, one that clamps a parameter's; a removed hook
    does nothing."""
    torch.manual_seed(0)
    lin = lib.nn.Linear(4, 5)
    if lib is jaxmod:
        load_torch_weights(_hooked_losses.torch_lin, lin)  # type: ignore[attr-defined]
    else:
        _hooked_losses.torch_lin = lin  # type: ignore[attr-defined]
    x = lib.tensor(X, requires_grad=True)
    seen: list = []
    h = lin(x)
    h.register_hook(lambda g: seen.append(g * 1))
    h.register_hook(lambda g: g * 2)
    gone = h.register_hook(lambda g: g * 100)
    gone.remove()
    lin.weight.register_hook(lambda g: g.clamp(-0.5, 0.5))
    h.tanh().pow(2).sum().backward()
    return seen, lin, x


def test_tensor_hooks_observe_and_replace_gradients_like_torch() -> None:
    got = {lib: _hooked_losses(lib) for lib in (torch, jaxmod)}
    (t_seen, t_lin, t_x), (j_seen, j_lin, j_x) = got[torch], got[jaxmod]
    assert len(j_seen) == len(t_seen) == 1 and isinstance(j_seen[0], jaxmod.Tensor)
    assert_close(j_seen[0], t_seen[0], TOL, "gradient seen by the hook")
    assert_close(j_x.grad, t_x.grad, TOL, "x.grad (scaled by the hook)")
    assert_close(j_lin.weight.grad, t_lin.weight.grad, TOL, "weight.grad (clamped)")
    assert_close(j_lin.bias.grad, t_lin.bias.grad, TOL, "bias.grad")
    for lib in (torch, jaxmod):
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that"):
            lib.ones(3).register_hook(lambda g: g)


def test_compiled_model_trains_with_backward_like_torch() -> None:
    """``model = torch.compile(model)`` then torch's loop (nanoGPT's default): the forward
    runs compiled, ``backward()`` replays the plain module call; two SGD steps equal torch's
    (torch uncompiled: the same numbers)."""
    tm, jm = _pair(_mlp)
    jm = jaxmod.compile(jm)
    opts = {torch: torch.optim.SGD(tm.parameters(), lr=0.1),
            jaxmod: jaxmod.optim.SGD(jm.parameters(), lr=0.1)}  # fmt: skip
    for step in range(2):
        losses = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            opts[lib].zero_grad()
            loss = _loss(lib, model, X, Y % 3)
            loss.backward()
            opts[lib].step()
            losses[lib] = loss
        assert_close(losses[jaxmod], losses[torch], TOL, f"step {step} loss")
    j_state = jm.state_dict()
    for n, v in tm.state_dict().items():
        assert_close(j_state[n], v, 1e-4, f"{n} after 2 steps")


def test_lbfgs_closure_calling_backward_minimises_like_torch() -> None:
    """pytorch/examples' time-sequence loop: ``optimizer.step(closure)`` with a closure
    that runs ``zero_grad(); loss.backward(); return loss``. Eighty iterations on an MLP
    amplify float32 rounding (torch's against itself too), so both are held to the same
    bar here; tests/test_lbfgs.py compares the iterates with torch's."""
    final = {}
    for lib in (torch, jaxmod):
        lib.manual_seed(0)
        x = lib.linspace(-1, 1, 20).view(-1, 1)
        y = 3 * x**2 - 1
        model = lib.nn.Sequential(lib.nn.Linear(1, 16), lib.nn.Tanh(), lib.nn.Linear(16, 1))
        opt = lib.optim.LBFGS(model.parameters(), lr=0.8)

        def closure(model: Any = model, opt: Any = opt, x: Any = x, y: Any = y,
                    lib: Any = lib) -> Any:  # fmt: skip
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        first = float(opt.step(closure))
        for _ in range(3):
            opt.step(closure)
        final[lib] = first, float(closure())
    for lib, (first, last) in final.items():
        assert last < 1e-2 * first, (lib.__name__, first, last)


def test_graphs_that_change_structure_every_step_stop_compiling_and_stay_right() -> None:
    """A Python loop over varying lengths (an RNN cell applied n times) makes a new graph
    structure per n: after 16 compiled ones for the same modules, backward() runs op by
    op; the gradients still equal torch's."""
    tape._COMPILED.clear()
    tape._FAMILIES.clear()
    torch.manual_seed(0)
    cells = {torch: torch.nn.RNNCell(4, 4)}
    cells[jaxmod] = jaxmod.nn.RNNCell(4, 4)
    load_torch_weights(cells[torch], cells[jaxmod])
    for n in range(1, 21):
        grads = {}
        for lib, cell in cells.items():
            cell.zero_grad()
            h = lib.from_numpy(X[:1, :4])
            for _ in range(n):
                h = cell(h)
            h.sum().backward()
            grads[lib] = cell.weight_hh.grad
        assert_close(grads[jaxmod], grads[torch], 1e-4, f"weight_hh.grad after {n} steps")
    assert len(tape._COMPILED) == tape._MAX_PER_FAMILY


# grad_fn names: `x` (2x3) and `x3` (2x4x3) require grad; `y` holds class indices
GRAD_FN_CASES = [
    "x + 1", "1 + x", "x - x", "1 - x", "x * 2", "x / 2", "2 / x", "x ** 2", "x ** x", "2 ** x",
    "-x", "x.exp()", "x.abs().log()", "x.sum()", "x.sum(1)", "x.mean()", "x.mean(0, keepdim=True)",
    "x.max()", "x.max(1)[0]", "x.min()", "x.amax(1)", "x.std()", "x.var(1)", "x.view(-1)",
    "x.reshape(3, 2)", "x.flatten()", "x.t()", "x.transpose(0, 1)", "x.permute(1, 0)", "x[0]",
    "x[:, 1:]", "x[0, 1:]", "x[None]", "x[t.tensor([0, 1])]", "x[x > 0]", "x.unsqueeze(0)",
    "x.unsqueeze(0).squeeze(0)", "x.unsqueeze(0).squeeze()", "x @ x.t()", "x @ t.ones(3)",
    "x3 @ x3.transpose(1, 2)", "t.mm(x, x.t())", "x.clone()", "x.clamp(0, 1)",
    "t.where(x > 0, x, 0.0)", "x.masked_fill(x > 0, 0.0)", "x.norm()", "x.norm(dim=1)",
    "x.split(1)[0]", "x.chunk(3, 1)[0]", "t.cat([x, x])", "t.stack([x, x])",
    "x.gather(1, y[:, None])",
    "x.softmax(-1)", "x.relu()", "x.square()", "x.cumsum(1)", "x.logsumexp(1)", "x.flip(0)",
    "x.roll(1, 0)", "x.repeat(2, 1)", "x[:, :1].expand(2, 3)", "x.narrow(1, 0, 2)",
    "x.select(0, 1)",
    "x.unbind(0)[0]", "t.einsum('ij,ij->i', x, x)", "t.sigmoid(x)", "t.tanh(x)",
    "F.relu(x)", "F.gelu(x)", "F.silu(x)", "F.leaky_relu(x)", "F.elu(x)", "F.softplus(x)",
    "F.hardtanh(x)", "F.logsigmoid(x)", "F.log_softmax(x, 1)", "F.softmax(x, -1)",
    "F.dropout(x, 0.5)", "F.layer_norm(x, (3,))", "F.linear(x, t.ones(5, 3), t.ones(5))",
    "F.linear(x, t.ones(5, 3))", "F.linear(x3, t.ones(5, 3), t.ones(5))",
    "F.batch_norm(x, t.zeros(3), t.ones(3), training=True)", "F.pad(x, (1, 1))",
    "F.cross_entropy(x, y)", "F.cross_entropy(x, y, reduction='sum')",
    "F.cross_entropy(x, y, label_smoothing=0.1)", "F.cross_entropy(x, t.softmax(x.detach(), 1))",
    "F.nll_loss(F.log_softmax(x, 1), y)", "F.mse_loss(x, t.zeros(2, 3))",
    "F.l1_loss(x, t.zeros(2, 3))", "F.l1_loss(x, t.zeros(2, 3), reduction='none')",
    "F.smooth_l1_loss(x, t.zeros(2, 3))", "F.huber_loss(x, t.zeros(2, 3))",
    "F.binary_cross_entropy(t.sigmoid(x), t.zeros(2, 3))",
    "F.binary_cross_entropy_with_logits(x, t.zeros(2, 3))",
    "F.kl_div(F.log_softmax(x, 1), t.full((2, 3), 1 / 3), reduction='batchmean')",
    "F.cosine_similarity(x, x)", "F.normalize(x)",
    "F.max_pool2d(x3[None], 2)", "F.avg_pool2d(x3[None], 2)", "F.adaptive_avg_pool2d(x3[None], 1)",
    "F.conv2d(x3[None], t.ones(1, 2, 2, 2))", "F.interpolate(x3[None], scale_factor=2)",
    "nn.Linear(3, 4)(x)", "nn.Linear(3, 4, bias=False)(x)", "nn.Linear(3, 4)(x3)",
    "nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))(x)", "nn.ReLU()(x)",
    "nn.CrossEntropyLoss()(x, y)", "nn.MSELoss()(x, t.zeros(2, 3))",
    "nn.L1Loss()(x, t.zeros(2, 3))",
    "nn.BCEWithLogitsLoss()(x, t.zeros(2, 3))", "nn.LayerNorm(3)(x)", "nn.BatchNorm1d(3)(x)",
    "nn.Conv2d(2, 1, 2)(x3[None])", "nn.Flatten()(x3)", "nn.Embedding(4, 3)(y)",
    "nn.Dropout(0.5)(x)", "nn.GELU()(x)", "nn.Tanh()(x)", "nn.Softmax(-1)(x)",
    "nn.MaxPool2d(2)(x3[None])", "nn.CrossEntropyLoss()(x, t.softmax(x.detach(), 1))",
    "nn.CrossEntropyLoss(label_smoothing=0.1)(x, y)", "nn.L1Loss(reduction='sum')(x, x * 0)",
    "nn.GroupNorm(1, 3)(x)", "nn.PReLU()(x)",
]  # fmt: skip


@pytest.mark.parametrize("expr", GRAD_FN_CASES)
def test_grad_fn_names_match_torch(expr: str) -> None:
    def name(lib: Any) -> str:
        lib.manual_seed(0)
        x = lib.ones(2, 3).requires_grad_() * 1
        x3 = lib.ones(2, 4, 3).requires_grad_() * 1
        env = {"t": lib, "F": lib.nn.functional, "nn": lib.nn, "x": x, "x3": x3,
               "y": lib.tensor([0, 2])}  # fmt: skip
        out = eval(expr, env)  # noqa: S307 - the table's own expressions
        return out.grad_fn.name()

    assert name(jaxmod) == name(torch)
