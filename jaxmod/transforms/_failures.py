"""Compiled steps that fail while running: out of memory, and donated state that is gone.

XLA consumes a step's donated input buffers when it starts the step. On XLA:CPU (jaxlib
0.10) an allocation failure inside the step -- an output or temporary buffer too large
for the host -- happens *after* that, so the donated state arrays are deleted whether or
not the step ran; and when the step was dispatched asynchronously (a program of more than
~1000 FLOPs), a failed *output* allocation is never reported: reading a result blocks
forever. jaxmod therefore checks a step's memory need before its first run
(:func:`check_memory`: XLA's own buffer sizes against what the device can give), so a
step that cannot fit is refused with every array in place, and names the state a step
that failed while running took with it (:func:`failure`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax

__all__ = ["OutOfMemoryError", "StateLostError", "check_memory", "failure"]

_SHOWN = 4  # lost entries named in a message


class OutOfMemoryError(jax.errors.JaxRuntimeError):
    """A compiled step needs more memory than its device can give (torch's
    ``torch.OutOfMemoryError``); every state array is unchanged.

    Raised before a step's first run, when XLA's buffer sizes for the step exceed what
    the device has, and when XLA reports ``RESOURCE_EXHAUSTED`` while every state array
    survived (``donate=False``). A ``jax.errors.JaxRuntimeError``, so also a
    ``RuntimeError``; its message starts with ``RESOURCE_EXHAUSTED``.
    """


class StateLostError(jax.errors.JaxRuntimeError):
    """A compiled step failed after XLA consumed its donated state buffers: the arrays
    the message names are deleted, and the objects holding them cannot be used until
    their state is loaded again.

    Deliberately not an :class:`OutOfMemoryError`: a loop that retries with a smaller
    batch on ``OutOfMemoryError`` must not carry on with a model whose arrays are gone.
    """


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _proc_kib(path: str, field: str) -> int:
    """A ``Field:  N kB`` line of a /proc file, in bytes (0 where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _host_limit() -> tuple[int, str] | None:
    """Bytes this process can never exceed on the host, and what sets the bound."""
    limits = []
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        limits.append((ram + _proc_kib("/proc/meminfo", "SwapTotal"), "physical memory and swap"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource
    except ImportError:  # not a POSIX system
        return min(limits) if limits else None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        used = _proc_kib("/proc/self/status", "VmSize")
        limits.append((soft - used, "address-space limit (RLIMIT_AS) less what is mapped"))
    return min(limits) if limits else None


def _capacity(device: Any) -> tuple[int, str] | None:
    """The most a new allocation on ``device`` can get, and what sets it (None: unknown)."""
    try:
        stats = device.memory_stats()
    except Exception:  # a backend without statistics
        stats = None
    if stats and "bytes_limit" in stats:
        limit, used = int(stats["bytes_limit"]), int(stats.get("bytes_in_use", 0))
        return limit - used, f"{_size(limit - used)} free of {_size(limit)}"
    if getattr(device, "platform", None) == "cpu":
        bound = _host_limit()
        return None if bound is None else (bound[0], f"{_size(bound[0])}: {bound[1]}")
    return None


def check_memory(jitted: Any, inputs: tuple, name: str) -> None:
    """Before a step's first run: raise :class:`OutOfMemoryError` when the buffers XLA
    assigned it (outputs not aliased to donated inputs, plus temporaries) exceed what
    one of its devices can give. The compile is the one the call then uses."""
    compiled = jitted.lower(*inputs).compile()
    try:
        stats = compiled.memory_analysis()
    except Exception:  # NotImplementedError on backends without the analysis
        return
    if stats is None:
        return
    out = stats.output_size_in_bytes - stats.alias_size_in_bytes
    need = out + stats.temp_size_in_bytes
    devices = {d for s in jax.tree_util.tree_leaves(compiled.output_shardings)
               for d in getattr(s, "device_set", ())}  # fmt: skip
    for device in sorted(devices, key=lambda d: d.id):
        cap = _capacity(device)
        if cap is not None and need > cap[0]:
            raise OutOfMemoryError(
                f"RESOURCE_EXHAUSTED: Out of memory: jaxmod.jit step '{name}' needs "
                f"{_size(need)} on {device} ({_size(out)} of new outputs, "
                f"{_size(stats.temp_size_in_bytes)} of temporaries, by XLA's buffer "
                f"assignment) but the device can give at most {cap[1]}. Nothing ran: every "
                "parameter, buffer and optimizer state is unchanged. Use a smaller batch, "
                "recompute activations in the backward pass (jaxmod.checkpoint), or return "
                "smaller results."
            )


def _deleted(value: Any) -> bool:
    return any(isinstance(x, jax.Array) and x.is_deleted()
               for x in jax.tree_util.tree_leaves(value))  # fmt: skip


def _name(cell: Any, describe: Callable[[Any], str | None]) -> str:
    """``Parameter 'model.0.weight'``; an optimizer's internal box as ``the state of 'opt'``."""
    text = describe(cell)
    if text is None:
        return f"a {type(cell).__name__}"
    _, _, path = text.partition(" ")
    owner, private, _ = path.strip("'").partition("._")
    return f"the state of '{owner}'" if private else text


def failure(e: Exception, cells: Sequence[Any], name: str,
            describe: Callable[[Any], str | None]) -> Exception | None:  # fmt: skip
    """What to raise for ``e``, raised by a compiled call of step ``name`` whose mutable
    state is ``cells``: :class:`StateLostError` when state arrays are deleted,
    :class:`OutOfMemoryError` for XLA's ``RESOURCE_EXHAUSTED`` with all state intact,
    else None (raise ``e`` itself)."""
    if isinstance(e, (OutOfMemoryError, StateLostError)):  # jaxmod's own: already explained
        return None
    text = str(e)
    lost = [c for c in cells if _deleted(c._value)]
    if not lost:
        if isinstance(e, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in text:
            return OutOfMemoryError(
                f"{text}\njaxmod.jit: step '{name}' ran out of memory while running; every "
                "state array survived (none was donated, or XLA failed before consuming "
                "them), so every parameter, buffer and optimizer state is unchanged."
            )
        return None
    names = list(dict.fromkeys(_name(c, describe) for c in lost))
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    if "has been deleted" in text:
        why = (
            "They were deleted before this call: an earlier step that donated them failed "
            "(it raised StateLostError), or the arrays were deleted explicitly."
        )
    else:
        why = (
            "The step donated them to XLA (donate=True), and XLA consumed them and then "
            f"failed while running: {type(e).__name__}: {text}"
        )
    oom = "RESOURCE_EXHAUSTED" in text
    return StateLostError(
        f"{'RESOURCE_EXHAUSTED: ' if oom else ''}jaxmod.jit: calling step '{name}' failed "
        f"and {len(lost)} of its state arrays are deleted: "
        f"{', '.join(names[:_SHOWN])}{more}. {why}\n"
        "The objects holding them cannot be used until their state is loaded again: from "
        "a checkpoint, or from copies taken before the call (sd = "
        "copy.deepcopy(model.state_dict()), osd = copy.deepcopy(opt.state_dict()); then "
        "model.load_state_dict(sd), opt.load_state_dict(osd); a plain state_dict() shares "
        "the arrays the step donates, as torch's shares storage). To keep the state "
        "through a failed step, compile it with jaxmod.jit(..., donate=False): XLA then "
        "never consumes the old arrays, at the cost of one more copy of the state in "
        "memory while a step runs."
    )
