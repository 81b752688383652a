"""The policy contract every backend implements.

``Observation`` and ``Decision`` are defined in ``market.observation`` because
the engine builds and consumes them without importing this package; they are
re-exported here so agent code has one place to import from.
"""

from market.backends import BackendContext, BackendError, Policy
from market.observation import Decision, ListingView, Observation

__all__ = ["BackendContext", "BackendError", "Decision", "ListingView", "Observation", "Policy"]
