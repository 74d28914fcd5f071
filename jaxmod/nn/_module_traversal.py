"""Walking a module tree: parameters, buffers, children and modules, ``apply``, grads.

torch's traversal order and de-duplication (``torch/nn/modules/module.py``, torch 2.13):
pre-order over ``_modules``, each shared module, parameter or buffer yielded once unless
``remove_duplicate=False``, ``None`` entries skipped. A mixin of
:class:`~jaxmod.nn.Module` (Module is the only user); it reads only the instance's
``_parameters``/``_buffers``/``_modules`` dicts, so it needs nothing of ``module.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Self

from jaxmod.nn.parameter import Buffer, Parameter

__all__ = ["TraversalMixin"]


class TraversalMixin:
    """The traversal methods of :class:`~jaxmod.nn.Module` (a mixin; Module is the only user).

    The modules they yield are :class:`~jaxmod.nn.Module` s (typed ``Any`` here, as this
    file sits below ``module.py``).
    """

    def _named_members(
        self, get_members: Callable, prefix: str = "", recurse: bool = True,
        remove_duplicate: bool = True,
    ) -> Iterator[tuple[str, Any]]:  # fmt: skip
        memo: set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for k, v in get_members(module):
                if v is None or id(v) in memo:
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (module_prefix + ("." if module_prefix else "") + k), v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(qualified_name, parameter)``, each shared parameter once by default."""
        return self._named_members(
            lambda m: m._parameters.items(), prefix, recurse, remove_duplicate
        )

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield every unique parameter."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Buffer]]:
        """Yield ``(qualified_name, buffer)`` for every buffer (persistent or not)."""
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Buffer]:
        """Yield every unique buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, child)`` for each unique direct child."""
        memo: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def children(self) -> Iterator[Any]:
        """Yield each unique direct child."""
        for _, m in self.named_children():
            yield m

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        """Yield ``(qualified_name, module)`` for this module and all below, pre-order."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Any]:
        """Yield this module and every unique module below it."""
        for _, m in self.named_modules():
            yield m

    def apply(self, fn: Callable[[Any], None]) -> Self:
        """Call ``fn`` on every child (recursively) and then on ``self``; return ``self``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        """Set ``requires_grad`` on every parameter; return ``self``."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget stored gradients (``p.grad``); jaxmod gradients are returned, not stored."""
        for p in self.parameters():
            p.grad = None
