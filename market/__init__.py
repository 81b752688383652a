"""market: a discrete-event simulator of agent commerce.

The engine lives here; agents, analysis and the Slack bot plug into it.
"""

__version__ = "0.1.0"
