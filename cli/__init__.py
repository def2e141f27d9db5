"""The ``tasker`` command."""
