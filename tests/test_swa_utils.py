"""``torch.optim.swa_utils`` (AveragedModel, the averaging functions, SWALR, update_bn):
jaxmod vs torch 2.13 on the same weights, data and training steps."""

from __future__ import annotations

import numpy as np
import pytest

import jaxmod

torch = pytest.importorskip("torch")


def _model(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Linear(4, 2))


def _averages(lib, model, strategy):
    sw = lib.optim.swa_utils
    averaged = [
        sw.AveragedModel(model, multi_avg_fn=sw.get_ema_multi_avg_fn(0.9)),
        sw.AveragedModel(model, avg_fn=sw.get_ema_avg_fn(0.9), use_buffers=True),
        sw.AveragedModel(model, avg_fn=sw.get_swa_avg_fn()),
        sw.AveragedModel(model),  # equal weights, the default
    ]
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    sched = sw.SWALR(opt, swa_lr=0.05, anneal_epochs=3, anneal_strategy=strategy)
    x = lib.from_numpy(np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3))
    lrs = []
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        for a in averaged:
            a.update_parameters(model)
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    sw.update_bn([(x[:4], 0), (x[4:], 1)], averaged[-1])
    states = [np.array(v.detach().numpy()) for a in averaged for v in a.state_dict().values()]
    return lrs, states, [list(a.state_dict()) for a in averaged], averaged[0](x)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_averaged_weights_swalr_and_update_bn_match_torch(strategy):
    tm, jm = _model(torch), _model(jaxmod)
    jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    t_lrs, t_states, t_keys, t_out = _averages(torch, tm, strategy)
    j_lrs, j_states, j_keys, j_out = _averages(jaxmod, jm, strategy)
    np.testing.assert_allclose(j_lrs, t_lrs, rtol=1e-12)
    assert j_keys == t_keys  # module.*, then n_averaged
    for t, j in zip(t_states, j_states):
        np.testing.assert_allclose(j, t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(j_out), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_averaged_model_errors_match_torch():
    sw_t, sw_j = torch.optim.swa_utils, jaxmod.optim.swa_utils
    for sw, lib in ((sw_t, torch), (sw_j, jaxmod)):
        with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
            sw.AveragedModel(lib.nn.Linear(2, 2), avg_fn=sw.get_swa_avg_fn(),
                             multi_avg_fn=sw.get_swa_multi_avg_fn())  # fmt: skip
        opt = lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)
        with pytest.raises(ValueError, match="anneal_strategy must be one of"):
            sw.SWALR(opt, swa_lr=0.05, anneal_strategy="step")
