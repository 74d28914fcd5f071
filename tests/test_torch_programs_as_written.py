"""Training programs in plain torch (``tests/torch_programs/``) run end to end on jaxmod
with only their import lines rewritten: their own ``main()``, with its data, its
``optimizer.zero_grad(); loss.backward(); optimizer.step()`` loop, schedulers, clipping,
evaluation and sampling, as written.

Their data and initial weights come from each library's own generator (``torch.randn``
against jaxmod's), so values are not compared with torch here; what is checked is that
the program trains (at least one ``backward()`` ran) and every float it returns is
finite. Their parts are compared with torch in the other program test files where the
program has them (``test_torch_programs.py``, ``test_ports_*.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _port_checks import report_unmodified, runs_as_written

# program -> its main() called with small sizes
CASES: dict[str, Callable[[Any], Any]] = {
    "dqn": lambda m: m.main(num_episodes=1),  # replay memory, target net, smooth_l1, clip
    "pixelcnn": lambda m: m.main(epochs=1, fm=4, layers=2),  # masked convs, sampling
    "distill": lambda m: m.main(epochs=1),  # teacher / student, KL at temperature T
    "simclr": lambda m: m.main(epochs=1),  # two views, InfoNCE, linear probe, top-k
    "realnvp": lambda m: m.main(steps=2),  # coupling layers, log-det, sampling
    "cyclegan": lambda m: m.main(iters=1, size=16),  # two GANs, set_requires_grad
    "vit_train": lambda m: m.main(epochs=1),  # param groups, warmup-cosine, mixup
    "data_pipeline": lambda m: m.main(epochs=2, n=60),  # Dataset/Subset/sampler, checkpoint
    "finetune": lambda m: m.main(epochs=2),  # frozen backbone, hooks, schedules w/o grads
    # hand-written Lion, YOLOv5 EMA (dtype.is_floating_point), @no_grad teacher forward,
    # hooks and a forward caching detached tensors, an autograd.Function STE, DDP checks
    "research_tricks": lambda m: m.main(epochs=2),
}

_report = report_unmodified("training programs (main() as written)", list(CASES), len(CASES))


@pytest.mark.parametrize("name", list(CASES))
def test_training_program_runs_as_written(name: str) -> None:
    runs_as_written(CASES[name], name)
