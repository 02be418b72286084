"""A local CoinGecko: replays bundled ``/coins/markets`` data over HTTP, with faults.

- :class:`ReplayServer`: the HTTP server (``python -m cryptopipe.replay`` runs one).
- :class:`Fault`: scripted misbehaviours to inject, one per request.
- :class:`Market`, :func:`frame`: the data itself, a pure function of the frame
  number, so tests can compute expected records without HTTP.
"""

from .faults import MISSING, Fault
from .market import Market, frame
from .server import RecordedRequest, ReplayServer

__all__ = ["MISSING", "Fault", "Market", "RecordedRequest", "ReplayServer", "frame"]
