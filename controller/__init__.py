"""The control loops: dispatch due work, recover lost work, keep process statuses current."""
