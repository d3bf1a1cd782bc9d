"""The software version recorded in every job manifest."""

from importlib.metadata import PackageNotFoundError, version


def software_version() -> str:
    try:
        return version("veil")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
