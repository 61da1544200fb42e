"""The catalogue: Gunicorn tracker cases, each reproduced as a scenario file.

Each case is a built-in scenario by name (``--scenario reload-leak``: one line in
``harness.scenarios.registry``) and a file in the FILE.py format (see
``harness.scenarios.user``), written as ``observe(server) -> dict`` (the facts) and a
pure ``decide(obs) -> (verdict, evidence)``, so the rules are tested on recorded
observations without a server.  The server-life actions they need (``server.reload()``,
``server.kill_worker()``, ``server.counts()``, ``server.load()`` ...) are the fixture's.

A case on its boundary releases, then bisected to its commits with a local clone::

    python bisect.py 25.1.0,25.2.0,26.0.0,26.1.0 --scenario reload-leak
    python bisect.py 25.1.0..26.1.0 --scenario reload-leak --repo CLONE

==================== ======= ============================ =============================
case                 tracker releases (fail)              commits (introduced / fixed)
==================== ======= ============================ =============================
reload_leak          #3648   25.2.0, 26.0.0               d3f80e8c (#3520) / a8283bbf
reload_drops         #3394   21.0.0 .. 23.0.0             0ebb73aa or a423fca8 / 01862114
keepalive_slow       #3025   21.0.0 .. 21.1.0             e7781d2c / bc905859 (#3033)
reload_broken_app    #2244   20.0.2 .. 20.0.4 (no 20.0.1) a4b6b138 / 27d1e988 (#2249)
respawn              -       24.0.0                       b650332c / 3179789f
==================== ======= ============================ =============================

The advisory cases (``adv_*.py``, ``--scenario adv-...``) reproduce one published
advisory each with the exact request bytes (``_wire.py`` holds what they share); their
``ID``, ``ALIASES`` and ``CLAIMED`` (each database's ranges) feed ``--format osv`` and
results/advisories.md (``python bench/advisories.py``).
"""
