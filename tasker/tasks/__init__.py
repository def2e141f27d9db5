"""The built-in task handlers, one module per task type. Each exposes ``run(params)``."""
