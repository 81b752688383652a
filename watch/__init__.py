"""The live page: watch a run in the browser (``market watch RUN_DIR``, ``market run SCENARIO --watch``).

A front end beside ``slackbot`` and ``analysis``'s report: it reads the engine
(``market``) and draws with ``analysis.figures``; ``market`` never imports it at
module level (``market.run --watch`` loads it when asked). A local page
(served by uvicorn and Starlette, server-sent events, plotly.js inlined) shows, per
market, the simulated clock, open listings, offers in flight, deals as they
close, tier figures and the haggling on one listing, with pause, resume, step,
speed and market controls.

- ``controls``: the viewer's controls and the pacing of the clock
- ``snapshot``: what the page shows of one market (plain data)
- ``figures``: the plotly figures, via the analysis package's builders
- ``session``: turning markets into published snapshots
- ``live``: a run the engine is running now (``--watch``)
- ``replay``: a run read back from its ledger, finished or still running
- ``server`` / ``page``: the HTTP server and the page (``static/``: its HTML, CSS and JavaScript)
- ``cli``: ``python -m watch RUN_DIR`` (also ``market watch`` and ``python -m market.watch``)
"""
