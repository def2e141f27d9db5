"""Code shared by the API, the tasker and the controller: settings, errors, statuses,
the task catalogue, the SQS transport and structured logging."""

from __future__ import annotations

__version__ = "0.1.0"
