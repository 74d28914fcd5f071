"""Forward pre-hooks, forward hooks and global module hooks: jaxmod vs torch 2.13.

Each test runs the same hook program on a torch model and a jaxmod model, records the
sequence of calls (and what the hooks saw) and compares the two records.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _torch_pairs import JAX, TORCH, assert_same_error, pair, to_numpy

import jaxmod
import jaxmod.nn as jnn


def _model(lib):
    class Scale(lib.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x, factor=1.0):
            return x * factor

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Scale("a")
            self.b = Scale("b")

        def forward(self, x, factor=2.0):
            return self.b(self.a(x, factor=factor))

    net = Net()
    net.name = "net"
    return net


def _x(lib):
    return lib.ones(2)


def _val(out):
    return to_numpy(out).tolist()


def _run_both(program):
    """Run ``program(lib, model, log)`` for each library; return the two logs."""
    logs = []
    for lib in (TORCH, JAX):
        log = []
        program(lib, _model(lib), log)
        logs.append(log)
    return logs


def _logs(program):
    """Run ``program(lib, log)`` for each library; return the two logs."""
    logs = []
    for lib in (TORCH, JAX):
        log = []
        program(lib, log)
        logs.append(log)
    return logs


# -------------------------------------------------------------- forward pre-hooks
def test_forward_pre_hook_order_prepend_and_removal_match_torch():
    def program(lib, m, log):
        h1 = m.register_forward_pre_hook(lambda mod, args: log.append("first"))
        m.register_forward_pre_hook(lambda mod, args: log.append("second"))
        m.register_forward_pre_hook(lambda mod, args: log.append("prepended"), prepend=True)
        m(_x(lib))
        h1.remove()
        h1.remove()  # removing twice is harmless
        m(_x(lib))

    t, j = _run_both(program)
    assert t == j == ["prepended", "first", "second", "prepended", "second"]


def test_forward_pre_hook_return_replaces_args_like_torch():
    def program(lib, m, log):
        m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))
        log.append(_val(m(_x(lib))))
        m.a.register_forward_pre_hook(lambda mod, args: args[0] * 10)  # single value wrapped
        log.append(_val(m(_x(lib))))

    t, j = _run_both(program)
    assert t == j == [[4.0, 4.0], [40.0, 40.0]]


def test_forward_pre_hook_with_kwargs_like_torch():
    def program(lib, m, log):
        def hook(mod, args, kwargs):
            log.append(sorted(kwargs))
            return args, {"factor": 5.0}

        m.a.register_forward_pre_hook(hook, with_kwargs=True)
        log.append(_val(m(_x(lib), factor=3.0)))

    t, j = _run_both(program)
    assert t == j == [["factor"], [5.0, 5.0]]


def test_forward_pre_hook_with_kwargs_bad_return_errors_like_torch():
    tm, jm = _model(TORCH), _model(JAX)
    tm.register_forward_pre_hook(lambda mod, a, k: 1, with_kwargs=True)
    jm.register_forward_pre_hook(lambda mod, a, k: 1, with_kwargs=True)
    assert_same_error(lambda: tm(_x(TORCH)), lambda: jm(_x(JAX)))


# ------------------------------------------------------------------ forward hooks
def test_forward_hook_sees_args_output_and_replaces_output_like_torch():
    def program(lib, m, log):
        def hook(mod, args, out):
            log.append((mod.name, len(args), _val(out)))
            return out + 1 if mod.name == "a" else None

        for mod in (m, m.a, m.b):
            mod.register_forward_hook(hook)
        log.append(_val(m(_x(lib))))

    t, j = _run_both(program)
    assert t == j
    assert j[-1] == [3.0, 3.0]


def test_forward_hook_prepend_and_with_kwargs_like_torch():
    def program(lib, m, log):
        m.register_forward_hook(lambda mod, args, out: log.append("plain"))

        def kw(mod, args, kwargs, out):
            log.append(("kw", sorted(kwargs), _val(out)))

        m.register_forward_hook(kw, with_kwargs=True, prepend=True)
        m(_x(lib), factor=4.0)

    t, j = _run_both(program)
    assert t == j == [("kw", ["factor"], [4.0, 4.0]), "plain"]


def test_hooks_on_nested_modules_fire_in_torch_order():
    def program(lib, m, log):
        for mod in m.modules():
            mod.register_forward_pre_hook(lambda mod, args: log.append(("pre", mod.name)))
            mod.register_forward_hook(lambda mod, args, out: log.append(("post", mod.name)))
        m(_x(lib))

    t, j = _run_both(program)
    assert t == j and len(j) == 6


# ------------------------------------------------------------------- always_call
def _raising(lib):
    class Boom(lib.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    return Boom()


def test_always_call_forward_hook_runs_when_forward_raises_like_torch():
    def program(lib, log):
        m = _raising(lib)
        m.register_forward_hook(
            lambda mod, args, out: log.append(("always", out)), always_call=True
        )
        m.register_forward_hook(lambda mod, args, out: log.append("never"))
        m.register_forward_hook(
            lambda mod, args, kwargs, out: log.append(("kw", kwargs)),
            always_call=True,
            with_kwargs=True,
        )
        with pytest.raises(ValueError, match="boom"):
            m(_x(lib))

    t, j = _logs(program)
    assert t == j == [("always", None), ("kw", {})]


def test_always_call_hook_runs_once_when_a_later_hook_raises_like_torch():
    def program(lib, log):
        m = _model(lib)
        m.register_forward_hook(lambda mod, a, out: log.append("always"), always_call=True)

        def bad(mod, a, out):
            raise KeyError("hook failed")

        m.register_forward_hook(bad)
        with pytest.raises(KeyError):
            m(_x(lib))

    t, j = _logs(program)
    assert t == j == ["always"]


def test_always_call_hook_errors_are_warned_not_raised_like_torch():
    messages = []
    for lib in (TORCH, JAX):
        m = _raising(lib)

        def bad(mod, a, out):
            raise RuntimeError("hook error")

        m.register_forward_hook(bad, always_call=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="boom"):
                m(_x(lib))
        messages.append([str(x.message) for x in w])
    assert messages[0] == messages[1] and len(messages[1]) == 1


# ------------------------------------------------------------------- global hooks
def test_global_and_local_hook_order_matches_torch():
    def program(lib, m, log):
        handles = []
        try:
            m.register_forward_pre_hook(lambda mod, a: log.append(("local-pre", mod.name)))
            handles.append(lib.global_pre(lambda mod, a: log.append(("global-pre", mod.name))))
            m.register_forward_hook(lambda mod, a, o: log.append(("local-post", mod.name)))
            handles.append(lib.global_fwd(lambda mod, a, o: log.append(("global-post", mod.name))))
            m.a.register_forward_hook(
                lambda mod, a, o: log.append(("local-post-prepended", mod.name)), prepend=True
            )
            handles.append(
                lib.global_fwd(
                    lambda mod, a, k, o: log.append(("global-kw", mod.name, sorted(k))),
                    with_kwargs=True,
                )
            )
            m(_x(lib))
        finally:
            for h in handles:
                h.remove()
        m(_x(lib))  # globals gone: only the local hooks fire
        log.append("end")

    t, j = _run_both(program)
    assert t == j
    assert ("global-kw", "a", ["factor"]) in j


def test_global_pre_hook_replaces_args_for_every_module_like_torch():
    def program(lib, m, log):
        h = lib.global_pre(lambda mod, args: (args[0] + 1,))
        try:
            log.append(_val(m(_x(lib))))
        finally:
            h.remove()
        log.append(_val(m(_x(lib))))

    t, j = _run_both(program)
    assert t == j == [[7.0, 7.0], [2.0, 2.0]]


def test_global_always_call_hook_runs_when_forward_raises_like_torch():
    def program(lib, log):
        m = _raising(lib)
        h = lib.global_fwd(lambda mod, a, o: log.append(type(mod).__name__), always_call=True)
        try:
            with pytest.raises(ValueError):
                m(_x(lib))
        finally:
            h.remove()

    t, j = _logs(program)
    assert t == j == ["Boom"]


def test_global_hooks_fire_for_library_layers():
    tm, jm = pair(lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU()))
    seen = {}
    for lib, m in ((TORCH, tm), (JAX, jm)):
        log = []
        h = lib.global_fwd(lambda mod, a, o, log=log: log.append(type(mod).__name__))
        try:
            m(_x(lib))
        finally:
            h.remove()
        seen[lib.name] = log
    assert seen["torch"] == seen["jaxmod"] == ["Linear", "ReLU", "Sequential"]


# --------------------------------------------------------------- RemovableHandle
def test_removable_handle_context_manager_and_ids_increase():
    m = _model(JAX)
    calls = []
    with m.register_forward_hook(lambda *a: calls.append(1)) as h:
        m(_x(JAX))
    m(_x(JAX))
    assert calls == [1]
    h2 = m.register_forward_pre_hook(lambda *a: None)
    h3 = jnn.modules.module.register_module_forward_hook(lambda *a: None)
    h3.remove()
    assert h2.id > h.id and h3.id > h2.id
    assert h.id not in m._forward_hooks and h3.id not in jnn.modules.module._global_forward_hooks


def test_removing_hook_clears_its_flags():
    m = _model(JAX)
    h = m.register_forward_hook(lambda *a: None, with_kwargs=True, always_call=True)
    p = m.register_forward_pre_hook(lambda *a: None, with_kwargs=True)
    h.remove()
    p.remove()
    assert not m._forward_hooks_with_kwargs and not m._forward_hooks_always_called
    assert not m._forward_pre_hooks_with_kwargs


def test_torch_handle_semantics_for_context_manager_match():
    for lib in (TORCH, JAX):
        m = _model(lib)
        with m.register_forward_pre_hook(lambda *a: None):
            assert len(m._forward_pre_hooks) == 1
        assert len(m._forward_pre_hooks) == 0


# -------------------------------------------------------------------- under jit
def test_hooks_fire_at_trace_time_under_jax_jit():
    _, jm = pair(lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU()))
    seen = []

    def hook(mod, args, out):
        seen.append((type(mod).__name__, isinstance(out, jax.core.Tracer)))
        return out * 2 if isinstance(mod, jnn.ReLU) else None

    jm[1].register_forward_hook(hook)
    jm.register_forward_hook(hook)
    x = jnp.ones((3, 2))
    eager = jm(x)
    assert seen == [("ReLU", False), ("Sequential", False)]
    seen.clear()
    compiled = jax.jit(lambda m, x: m(x))(jm, x)
    assert seen == [("ReLU", True), ("Sequential", True)]
    np.testing.assert_allclose(np.asarray(compiled), np.asarray(eager), rtol=1e-6)


def test_global_hook_fires_under_jax_jit_and_changes_output():
    _, jm = pair(lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 2)))
    x = jnp.ones((1, 2))
    plain = np.asarray(jm(x))
    traced = []
    h = jnn.modules.module.register_module_forward_hook(
        lambda mod, a, o: traced.append(type(mod).__name__) or o + 1
    )
    try:
        out = jax.jit(lambda m, x: m(x))(jm, x)
    finally:
        h.remove()
    assert traced == ["Linear", "Sequential"]
    np.testing.assert_allclose(np.asarray(out), plain + 2, rtol=1e-6)
    assert jaxmod is not None
