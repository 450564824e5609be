"""Test support: real servers, real PostgreSQL, and authenticated stubs."""
