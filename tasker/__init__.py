"""The tasker: consumes SQS queues, claims runs under a lease, executes them, records them."""
