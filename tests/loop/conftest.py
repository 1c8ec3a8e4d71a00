"""The loop's tests use the serving tests' tiny published version (a model in production, its features)."""

from tests.serving.conftest import promote, publish_tiny_version, service, tiny_world  # noqa: F401
