"""The read API (FastAPI): published gold and the catalogue under the access policy. ``create_app(settings)`` builds
it; ``lenslake api`` serves it. FastAPI is imported only when an app is built."""

from __future__ import annotations


def create_app(settings):
    from lenslake.api.app import create_app as build

    return build(settings)
