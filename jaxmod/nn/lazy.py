"""What every lazy module shares (torch's ``LazyModuleMixin``).

A lazy module starts with :class:`UninitializedParameter` / :class:`UninitializedBuffer`
boxes whose sizes depend on its first input. Its first call -- which must be eager, since
it creates state and changes the module's class -- runs the class's
``initialize_parameters(input)`` hook (which infers the missing sizes, materialises the
boxes in place and draws the class's initialisation), moves the new state to the
requested device and turns the module into its ``cls_to_become`` (``LazyConv2d`` becomes
``Conv2d``), as torch does. ``load_state_dict`` materialises the boxes with the loaded
shapes (in ``_state_dict``); the class still changes at the first call.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core import state
from jaxmod.nn.module import _bump_version
from jaxmod.nn.parameter import _is_lazy, _unwrap

__all__ = ["LazyModuleMixin"]


class LazyModuleMixin:
    """Mixed in before a concrete module class; subclasses set ``cls_to_become`` and
    implement ``initialize_parameters(input)``."""

    cls_to_become: type | None = None

    def _lazy_setup(self, device: Any, dtype: Any) -> None:
        """Remember where and in which dtype the materialised state goes."""
        self._lazy_dtype = dtype or jnp.float32
        self._lazy_device = device

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer still has no shape."""
        boxes = [*self._parameters.values(), *self._buffers.values()]  # type: ignore[attr-defined]
        return any(_is_lazy(b) for b in boxes)

    def initialize_parameters(self, input: Any) -> None:
        """Infer the missing sizes from ``input`` and materialise the boxes."""
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}"
        )

    def _infer_parameters(self, input: Any) -> None:
        x = _unwrap(input)
        if state.ctx.jit_depth or isinstance(x, jax.core.Tracer):
            raise RuntimeError(
                f"{self!r} has uninitialized parameters: call it once eagerly (outside "
                "jaxmod.jit and JAX transforms) so it can create them."
            )
        had_lazy = self.has_uninitialized_params()
        self.initialize_parameters(x)
        if self.has_uninitialized_params():
            raise RuntimeError(f"module {type(self).__name__} has not been fully initialized")
        if had_lazy and self._lazy_device is not None:
            self.to(self._lazy_device)  # type: ignore[attr-defined]
        del self._lazy_dtype, self._lazy_device
        self.__class__ = self.cls_to_become
        _bump_version()

    def forward(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        self._infer_parameters(input)
        return self.forward(input, *args, **kwargs)
