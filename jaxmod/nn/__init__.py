"""Neural-network building blocks with torch's names and semantics."""

from jaxmod.nn.parameter import Buffer, Parameter, Variable
