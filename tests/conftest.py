"""Shared pytest configuration. Fixture modules live in tests/fixtures/ and are
registered here so every test file can use them."""

pytest_plugins: list[str] = ["tests.fixtures.netns_hosts", "tests.fixtures.moto_server",
                             "tests.fixtures.quickstart"]

# Property tests explore a fixed sequence of examples by default, so CI is repeatable;
# HYPOTHESIS_PROFILE=explore draws new ones each run (and keeps failures in .hypothesis/).
import os  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def require_tool(present: bool, what: str) -> None:
    """A test that needs an external tool (a validator, terraform) fails when it is missing:
    scripts/setup.sh installs them all, and a test that skips proves nothing."""
    if not present:
        pytest.fail(f"{what}: run scripts/setup.sh, which installs it")
