"""Offline provider simulator for the `simulate` and `demo` commands and the tests."""

from .chaos import run_chaos
from .faults import FaultSpec, FaultStore, RateLimitFault, RedirectFault
from .server import Simulator, simulator_config

__all__ = ["FaultSpec", "FaultStore", "RateLimitFault", "RedirectFault", "Simulator", "run_chaos", "simulator_config"]
