"""The catalogue: Gunicorn tracker cases and advisories, one case module each (the format
of ``harness.scenarios.case``), discovered by the registry under their file's name
(``reload_leak.py`` is ``--scenario reload-leak``; a ``_`` module is not a case).  Each
docstring says what the tracker or advisory claims and what our runs measured; ``observe``
gathers facts with the fixture's actions and a pure ``decide`` judges them, so the rules are
tested on recorded observations.  ``RELEASES = (range, why)`` is where
``bench/known_regressions.py`` runs a case; an advisory's ``ID``, ``ALIASES`` and
``CLAIMED`` (each database's ranges) feed ``--format osv`` and ``bench/advisories.py``.
Adding a case is its file and its test.
"""
