"""Local emulators of cloud services for integration tests (each runs in its own venv/process)."""
