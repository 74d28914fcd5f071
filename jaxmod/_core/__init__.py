"""The state kernel: jaxmod's core idea in one place, importing nothing above it.

Read in this order (about 1,200 lines):

1. ``state.py``: structure version, per-thread trace depths, call lock, named errors.
2. ``cells.py``: :class:`Variable`, the box whose ``_value`` slot is the unit of state.
3. ``rng.py``: :class:`Generator`, a PRNG key held in a box and split per draw.
4. ``graph.py``: a module graph as unique cells plus a GraphDef; the one rule for static.
5. ``lifting.py``: ``discover`` (the state a call reaches) and ``lift`` (swap in, run,
   read back, restore in ``finally``).
6. ``codegen.py``: the generated hot paths (steady-state jit call, unflatten).
7. ``devices.py``: one parser for device specs.

A stateful object implements ``_jaxmod_cells_()`` (its cells) and ``_jaxmod_static_()``
(what else shapes traced code); Module, Optimizer and Generator do, so transforms never
ask what kind of object they hold.
"""

from jaxmod._core import cells, codegen, devices, graph, lifting, rng, state
from jaxmod._core.cells import Variable
from jaxmod._core.devices import resolve_device
from jaxmod._core.graph import GraphDef, graph_state, static_key
from jaxmod._core.lifting import discover, lift
from jaxmod._core.rng import Generator, default_generator, next_key
from jaxmod._core.state import NeedsLift, StaleStateError, TraceError, TracerLeakError

__all__ = [  # the modules, then the names most callers need
    "cells", "codegen", "devices", "graph", "lifting", "rng", "state", "Variable", "Generator",
    "default_generator", "next_key", "GraphDef", "graph_state", "static_key", "discover", "lift",
    "resolve_device", "NeedsLift", "StaleStateError", "TraceError", "TracerLeakError",
]  # fmt: skip
