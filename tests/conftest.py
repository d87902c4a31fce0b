"""Shared pytest configuration. Fixture modules live in tests/fixtures/ and are
registered here so every test file can use them."""

pytest_plugins: list[str] = ["tests.fixtures.netns_hosts"]
