""":class:`Chi2`: the chi-squared distribution, a :class:`Gamma` with shape ``df / 2``
and rate ``1 / 2`` (``torch.distributions.chi2``)."""

from __future__ import annotations

from typing import Any

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Gamma
from jaxmod.distributions.distribution import check_param

__all__ = ["Chi2"]


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom (torch's repr:
    ``Chi2()``; a bad ``df`` is reported as ``df``)."""

    arg_constraints = {"df": constraints.positive}
    _repr_params = False

    def __init__(self, df: Any, validate_args: bool | None = None) -> None:
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def _check_params(self) -> None:
        check_param("df", self._params["concentration"] * 2, constraints.positive, repr(self))

    @property
    def df(self) -> Any:
        """The degrees of freedom."""
        return self._out(self._params["concentration"] * 2)
