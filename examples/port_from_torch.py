"""Port a torch model's weights to jaxmod and back.

    python examples/port_from_torch.py [--model alexnet|lenet]

1. Build the torch model from ``examples/cnn.py`` itself: the same model file, loaded with
   its imports rewritten (``import jaxmod`` -> ``import torch``), is a torch program.
   Save its state_dict with ``torch.save``.
2. ``jaxmod.load`` reads that file *without torch* and the jaxmod port
   (``examples/cnn.py``, same class and attribute names) loads it with
   ``load_state_dict``; the outputs agree with torch's.
3. ``jaxmod.save`` writes a safetensors file, which torch reads back with
   ``safetensors.torch.load_file``; the outputs agree again.

``--model alexnet`` (default) uses one 3x224x224 image (AlexNet is 57M parameters with 10
classes: the files are ~230 MB); ``--model lenet`` is the fast smoke-test mode (3x32x32).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load_module(path: Path, name: str, torch: bool = False):
    """Import ``path`` as module ``name``; with ``torch=True`` its jaxmod imports are
    rewritten to torch's (``import jaxmod`` -> ``import torch``), nothing else."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    source = path.read_text()
    if torch:
        source = source.replace("from jaxmod import nn", "from torch import nn")
        source = source.replace("import jaxmod\n", "import torch as jaxmod\n")
    exec(compile(source, str(path), "exec"), mod.__dict__)
    return mod


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("alexnet", "lenet"), default="alexnet")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import safetensors.torch
    import torch

    import jaxmod

    ref = load_module(HERE / "cnn.py", "torch_cnn", torch=True)
    port = load_module(HERE / "cnn.py", "jaxmod_port_cnn")
    if args.model == "alexnet":
        make_torch, make_jax, shape = ref.AlexNet, port.AlexNet, (1, 3, 224, 224)
        kwargs = {"num_classes": 10}
    else:
        make_torch, make_jax, shape = ref.LeNetSequential, port.LeNetSequential, (2, 3, 32, 32)
        kwargs = {"classes": 10}

    torch.manual_seed(args.seed)
    tmodel = make_torch(**kwargs).eval()  # eval: dropout off on both sides
    x = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    n_params = sum(p.numel() for p in tmodel.parameters())
    print(f"torch {type(tmodel).__name__}: {n_params:,} parameters, output {want.shape}")

    with tempfile.TemporaryDirectory() as tmp:
        pt_path = os.path.join(tmp, "model.pt")
        torch.save(tmodel.state_dict(), pt_path)  # 1. torch writes

        jmodel = make_jax(**kwargs).eval()
        t0 = time.perf_counter()
        result = jmodel.load_state_dict(jaxmod.load(pt_path))  # 2. jaxmod reads (no torch)
        print(f"jaxmod.load + load_state_dict: {result} ({time.perf_counter() - t0:.2f} s)")
        forward = jaxmod.jit(lambda m, x: m(x))
        got = np.asarray(forward(jmodel, jaxmod.from_numpy(x)))
        err_in = float(np.max(np.abs(got - want)))
        print(f"torch -> jaxmod: max abs output difference {err_in:.2e}")

        st_path = os.path.join(tmp, "model.safetensors")
        jaxmod.save(jmodel.state_dict(), st_path)  # 3. jaxmod writes, torch reads
        tback = make_torch(**kwargs).eval()
        tback.load_state_dict(safetensors.torch.load_file(st_path))
        with torch.no_grad():
            back = tback(torch.from_numpy(x)).numpy()
        err_out = float(np.max(np.abs(back - want)))
        print(f"jaxmod -> torch: max abs output difference {err_out:.2e}")

    tol = 1e-4 * max(1.0, float(np.max(np.abs(want))))
    ok = err_in <= tol and err_out == 0.0  # the round trip itself is bit-exact
    print("outputs equal" if ok else "outputs DIFFER")
    if not ok:
        raise SystemExit(1)
    return {"err_torch_to_jaxmod": err_in, "err_jaxmod_to_torch": err_out}


if __name__ == "__main__":
    main()
