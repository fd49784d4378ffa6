"""The HTTP server: ``create_app`` (FastAPI), dynamic batching, limits, the search page (``static/``)."""

from polymodal.serve.limits import Limits

__all__ = ["Limits", "create_app"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "create_app":  # FastAPI is imported only when an app is made
        from polymodal.serve.app import create_app

        return create_app
    raise AttributeError(name)
