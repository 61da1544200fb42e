"""The catalogue: Gunicorn tracker cases, one case module each, discovered by the registry.

Each module here is a scenario by its file's name (``reload_leak.py`` is ``--scenario
reload-leak``; ``python bisect.py --list-scenarios`` lists them all) in the case format
(``harness.scenarios.case``): a docstring that says what the tracker says and what our
runs said, SETTINGS/BIND/TRACKER/ID/CANNOT, ``observe(server) -> dict`` (the facts) and a
pure ``decide(obs) -> (verdict, evidence)``, so the rules are tested on recorded
observations without a server.  The server-life actions they need (``server.reload()``,
``server.kill_worker()``, ``server.counts()``, ``server.load()`` ...) are the fixture's
(``harness.scenarios.fixture``).  ``RELEASES = (range, why)`` is where
``bench/known_regressions.py`` runs the case.  Adding a case is its file and its test.

A case on its boundary releases, then bisected to its commits with a local clone::

    python bisect.py 25.1.0,25.2.0,26.0.0,26.1.0 --scenario reload-leak
    python bisect.py 25.1.0..26.1.0 --scenario reload-leak --repo CLONE

The advisory cases (``adv_*.py``, ``--scenario adv-...``) reproduce one published
advisory each with the exact request bytes (``_wire.py`` holds what they share: a module
whose name starts with ``_`` is not a case); their ``ID``, ``ALIASES`` and ``CLAIMED``
(each database's ranges) feed ``--format osv`` and results/advisories.md
(``python bench/advisories.py``).
"""
