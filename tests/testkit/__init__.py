"""Helpers shared by the test suites (importable as `testkit`: tests/ is on sys.path)."""
