"""Shared pytest configuration. Fixture modules live in tests/fixtures/ and are
registered here so every test file can use them."""

pytest_plugins: list[str] = ["tests.fixtures.netns_hosts", "tests.fixtures.moto_server"]

# Property tests explore a fixed sequence of examples by default, so CI is repeatable;
# HYPOTHESIS_PROFILE=explore draws new ones each run (and keeps failures in .hypothesis/).
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
