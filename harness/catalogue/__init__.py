"""The catalogue: Gunicorn tracker cases, each reproduced as a scenario file.

Each case is a ``--scenario harness/catalogue/CASE.py`` file in the FILE.py format
(see ``harness.scenarios.user``), written as ``observe(server) -> dict`` (the facts)
and a pure ``decide(obs) -> (verdict, evidence)``, so the rules are tested on recorded
observations without a server.  ``life`` holds the server-life helpers they share.
"""
