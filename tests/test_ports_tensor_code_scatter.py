"""Tensor programs written in plain torch whose forward scatters and gathers by index
(``tests/torch_programs/``) run on jaxmod with only their import lines rewritten, and match
torch; the companion of ``test_ports_tensor_code.py`` (split so that each file runs in
30 s on one core: every eager op compiles once per shape).

Programs: ``moe`` (top-k routing dispatched with ``torch.where`` + ``x[token]`` +
``index_add_``, the dense ``scatter_`` + ``einsum`` form, a load-balancing loss from
``F.one_hot``, ``bincount`` / ``scatter_`` / ``gather`` routing tables) and
``einsum_attention`` (softmax and linear attention as ``einsum`` contractions with
``masked_fill`` padding masks, a ``full_like`` + ``scatter_`` label-smoothing loss, a
``DataLoader`` evaluation loop, ``scatter_add_`` label counting).

Aspects as in ``test_ports_tensor_code.py``. The MoE's sparse dispatch has shapes that
depend on the routing (``torch.where`` of the expert mask), so it cannot run under
``jaxmod.jit``: its train step is the dense form under ``jaxmod.jit`` (``train``) and the
sparse dispatch stepped eagerly (``train_eager``: ``jaxmod.value_and_grad`` op by op).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _port_checks import (
    adam,
    assert_close,
    case_params,
    check_eval,
    check_loss_backward,
    check_step,
    check_structure,
    eager_step,
    load_torch_weights,
    program_pair,
    report_unmodified,
    to_numpy,
    unmodified,
)

import jaxmod

TOL = 2e-4


# ---------------------------------------------------------------------------- MoE
def _moe(aspect: str) -> None:
    def build(m: Any, lib: Any) -> Any:
        return m.MoEClassifier(vocab=16, dim=8, num_classes=3, hidden=16, num_experts=4, top_k=2)

    mods, tm, jm = program_pair("moe", build)
    # 8 tokens that torch's router (seed 0) sends 4 to each expert: every expert's x[token]
    # has one shape, so the eager dispatch compiles each op once ("routing" checks it)
    tokens = np.random.default_rng(69).integers(0, 16, (2, 4)).astype(np.int64)
    label = np.array([0, 2], np.int64)

    def dense(model: Any, on: bool) -> Any:
        model.dense = on
        return model

    def loss_of(lib: Any, model: Any, tokens: Any, label: Any) -> Any:
        logits, aux = model(tokens)
        return lib.nn.functional.cross_entropy(logits, label) + aux, (logits, aux)

    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        # the sparse dispatch as written (torch.where on the one-hot mask, x[token],
        # index_add_): torch's (logits, aux loss). The dense form is compared in "train"
        check_eval(tm, jm, [tokens], TOL)
    elif aspect in ("train", "backward"):
        # the dense form under jaxmod.jit (the sparse dispatch's shapes depend on values)
        check_step(
            dense(tm, True),
            dense(jm, True),
            [tokens, label],
            loss_of,
            TOL,
            make_opt=adam,
            backward=aspect == "backward",
        )
    elif aspect == "train_eager":
        # the sparse dispatch as written, stepped eagerly: index_add_'s gradient
        eager_step(tm, jm, [tokens, label], loss_of, TOL)
    elif aspect == "backward_sparse":
        # loss.backward() through the sparse dispatch (shapes that depend on values: the
        # tape's replay cannot be compiled and runs eagerly)
        load_torch_weights(tm, jm)
        xs = jaxmod.from_numpy(tokens), jaxmod.from_numpy(label)
        check_loss_backward(jm, lambda m: loss_of(jaxmod, m, *xs)[0], TOL)
    elif aspect == "routing":
        # expert_load (bincount of the choices) and routing_table (scatter_ into zeros,
        # gather back, a bool scatter_ of True, where) as written
        load_torch_weights(tm, jm)
        out = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            t = lib.from_numpy(tokens)
            out[lib] = (mods[lib].expert_load(model, t), *mods[lib].routing_table(model, t))
        j_load, j_comb, j_chosen, j_unused, j_max = out[jaxmod]
        t_load, t_comb, t_chosen, t_unused, t_max = out[torch]
        assert t_load.tolist() == [4, 4, 4, 4]
        np.testing.assert_array_equal(to_numpy(j_load), t_load.numpy())
        assert j_load.dtype == jaxmod.long and j_chosen.dtype == jaxmod.bool
        np.testing.assert_array_equal(to_numpy(j_chosen), t_chosen.numpy())
        assert_close(j_comb, t_comb, TOL, "combine")
        assert_close(j_unused, t_unused, TOL, "unused probability")
        assert_close(j_max.values, t_max.values, TOL, "max probability")
        np.testing.assert_array_equal(to_numpy(j_max.indices), t_max.indices.numpy())


# ---------------------------------------------------------------------------- einsum attention
def _einsum(aspect: str) -> None:
    def build(m: Any, lib: Any, linear: bool = False) -> Any:
        return m.Classifier(vocab=20, dim=16, heads=4, num_classes=5, depth=1, linear=linear)

    mods, tm, jm = program_pair("einsum_attention", build)
    tokens, labels = (v.numpy() for v in mods[torch].make_data(12))
    assert (tokens == 0).any()  # padded rows: the key padding masks are exercised
    x, y = tokens[:6], labels[:6]

    def loss_of(lib: Any, model: Any, x: Any, y: Any) -> Any:
        output = model(x)
        return mods[lib].LabelSmoothingLoss(5, smoothing=0.1)(output, y), output

    if aspect == "structure":
        check_structure(tm, jm)
        assert_close(jm.pos.pe, tm.pos.pe, 1e-6, "pe buffer")
    elif aspect == "data":
        # make_data: jaxmod's own draws; the padding and the label rule
        # (scatter_add_ of ones into counts, argmax % num_classes) checked in numpy
        jt, jl = (to_numpy(v) for v in mods[jaxmod].make_data(12))
        assert jt.shape == tokens.shape and jt.dtype == jl.dtype == np.dtype(jaxmod.long)
        pad = jt == 0
        assert (np.diff(pad.astype(int), axis=1) >= 0).all()  # padding only at the end
        counts = np.stack([np.bincount(row, minlength=20) for row in jt])
        counts[:, 0] = 0
        np.testing.assert_array_equal(jl, counts.argmax(1) % 5)
    elif aspect == "eval":
        check_eval(tm, jm, [x], TOL)
        torch.manual_seed(1)
        tl = build(mods[torch], torch, linear=True)
        jl = build(mods[jaxmod], jaxmod, linear=True)
        check_structure(tl, jl)
        check_eval(tl, jl, [x], TOL)  # elu + 1 features, three-operand einsum
    elif aspect in ("train", "backward"):
        # stands in for a loop's `output = model(x); loss = criterion(output, y);
        # loss.backward(); optimizer.step()` with the program's LabelSmoothingLoss
        # (full_like + scatter_ under no_grad)
        check_step(tm, jm, [x, y], loss_of, TOL, make_opt=adam, backward=aspect == "backward")
    elif aspect == "evaluate":
        # evaluate() over make_loader(): .item() sums and argmax(dim=1).eq(y).sum().item()
        load_torch_weights(tm, jm)
        out = {}
        for lib, model in ((torch, tm), (jaxmod, jm)):
            m = mods[lib]
            loader = m.make_loader(lib.from_numpy(tokens), lib.from_numpy(labels), 6)
            out[lib] = m.evaluate(model, loader, m.LabelSmoothingLoss(5))
        (t_loss, t_acc), (j_loss, j_acc) = out[torch], out[jaxmod]
        assert isinstance(j_loss, float) and j_acc == t_acc
        assert_close(j_loss, t_loss, TOL, "evaluate loss")


CASES: dict[str, tuple[Callable[[str], None], tuple[str, ...]]] = {
    "moe": (_moe, ("structure", "eval", "train", "train_eager", "backward_sparse", "routing",
                   "backward")),
    "einsum_attention": (_einsum, ("structure", "data", "eval", "train", "evaluate",
                                   "backward")),
}  # fmt: skip

# (program, aspect) -> the error it stops at today
XFAIL: dict[tuple[str, str], str] = {}

_ASPECTS = {name: CASES[name][1] for name in CASES}
UNMODIFIED = unmodified(_ASPECTS, XFAIL)
_report_count = report_unmodified("scatter / einsum programs", UNMODIFIED, len(CASES))


@pytest.mark.parametrize("name, aspect", case_params(_ASPECTS, XFAIL))
def test_scatter_code_program_matches_torch(name: str, aspect: str) -> None:
    CASES[name][0](aspect)
