"""Helpers shared by the integration, API and e2e tests."""
