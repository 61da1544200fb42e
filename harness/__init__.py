"""gunicorn-bisect: find where a Gunicorn server-lifecycle failure starts and ends."""


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" when the
    package was copied without its metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gunicorn-bisect")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
