"""The SQS transport: one queue per task type, each with a dead-letter queue.

A small object with a clear contract (after dramatiq's Consumer): :meth:`receive` long-polls
and returns a batch (possibly empty); :meth:`ack` deletes; :meth:`extend` changes the
visibility timeout; poison messages reach the dead-letter queue through the redrive policy.
Every failure to reach SQS surfaces as :class:`QueueUnavailable`.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from core.errors import QueueUnavailable
from core.messages import Message, RunRef, chunk, encode
from core.settings import Settings

log = logging.getLogger("tasker.sqs")
T = TypeVar("T")

_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclasses.dataclass(frozen=True)
class Received:
    message_id: str
    receipt: str
    body: str
    receive_count: int


def credentials(settings: Settings) -> dict[str, str]:
    """Credentials from ``<secrets_dir>/aws_credentials`` if present, else the usual AWS chain;
    against a local endpoint with no credentials at all, any pair works."""
    path = Path(settings.secrets_dir) / "aws_credentials"
    if path.is_file():
        parser = configparser.ConfigParser()
        parser.read(path)
        section = parser["default"] if parser.has_section("default") else None
        if section is not None and section.get("aws_access_key_id"):
            out = {
                "aws_access_key_id": section["aws_access_key_id"],
                "aws_secret_access_key": section.get("aws_secret_access_key", ""),
            }
            if section.get("aws_session_token"):
                out["aws_session_token"] = section["aws_session_token"]
            return out
    if settings.sqs_endpoint and boto3.Session().get_credentials() is None:
        return {"aws_access_key_id": "tasker", "aws_secret_access_key": "tasker"}
    return {}


def make_client(settings: Settings, read_timeout: float = 30.0) -> Any:
    config = botocore.config.Config(
        connect_timeout=2,
        read_timeout=read_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=16,
    )
    return boto3.client(
        "sqs",
        endpoint_url=settings.sqs_endpoint,
        region_name=settings.sqs_region,
        config=config,
        **credentials(settings),
    )


class Transport:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.client = client or make_client(settings, read_timeout=settings.poll_seconds + 10)
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- queues ---------------------------------------------------------------------------

    def queue_name(self, task_type: str) -> str:
        return f"{self.settings.queue_prefix}{task_type}"

    def ensure_queue(self, task_type: str) -> str:
        """Create the queue and its dead-letter queue if missing; return the queue URL."""
        url = self._urls.get(task_type)
        if url:
            return url
        name = self.queue_name(task_type)
        lease = str(self.settings.lease_seconds)

        def create() -> str:
            dlq_url = self.client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = self.client.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            redrive = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.settings.max_receives)}
            )
            try:
                return str(self.client.create_queue(
                    QueueName=name,
                    Attributes={"VisibilityTimeout": lease, "RedrivePolicy": redrive},
                )["QueueUrl"])
            except botocore.exceptions.ClientError as exc:
                # The queue exists with other attributes (settings changed): adopt and update it.
                if "QueueAlreadyExists" not in str(exc) and "QueueNameExists" not in str(exc):
                    raise
                existing = str(self.client.get_queue_url(QueueName=name)["QueueUrl"])
                self.client.set_queue_attributes(
                    QueueUrl=existing,
                    Attributes={"VisibilityTimeout": lease, "RedrivePolicy": redrive},
                )
                return existing

        url = self._call(f"create queue {name}", create)
        with self._lock:
            self._urls[task_type] = url
        return url

    def ensure_queues(self, task_types: Iterable[str]) -> None:
        for task_type in task_types:
            self.ensure_queue(task_type)

    def _with_queue(self, task_type: str, what: str, fn: Callable[[str], T]) -> T:
        """Call ``fn(queue_url)``; if the queue vanished (an SQS server restarted), recreate it
        and try once more."""
        url = self.ensure_queue(task_type)
        try:
            return self._call(what, lambda: fn(url))
        except _QueueGone:
            with self._lock:
                self._urls.pop(task_type, None)
            url = self.ensure_queue(task_type)
            try:
                return self._call(what, lambda: fn(url))
            except _QueueGone as exc:
                raise QueueUnavailable(f"{what}: queue {self.queue_name(task_type)} is missing") from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING_QUEUE:
                raise _QueueGone(code) from exc
            raise QueueUnavailable(f"{what}: SQS refused: {code or exc}") from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise QueueUnavailable(f"{what}: SQS unreachable: {exc}") from exc

    # --- producing ------------------------------------------------------------------------

    def send_runs(self, task_type: str, runs: list[RunRef]) -> list[RunRef]:
        """Send messages naming ``runs``; return the runs whose message SQS did not accept.

        Raises QueueUnavailable when SQS cannot be reached at all (nothing was sent then, or
        what was sent is returned as accepted by earlier calls of this method — callers treat
        the whole list as not sent, which is safe: a duplicate delivery is harmless).
        """
        failed: list[RunRef] = []
        groups = chunk(runs, self.settings.runs_per_message)
        for start in range(0, len(groups), 10):
            batch = groups[start : start + 10]
            entries = [
                {"Id": str(i), "MessageBody": encode(Message(task_type, group))}
                for i, group in enumerate(batch)
            ]
            response = self._with_queue(
                task_type,
                f"send to {self.queue_name(task_type)}",
                lambda url, e=entries: self.client.send_message_batch(QueueUrl=url, Entries=e),  # type: ignore[misc]
            )
            for failure in response.get("Failed", []):
                failed.extend(batch[int(failure["Id"])])
        return failed

    # --- consuming ------------------------------------------------------------------------

    def receive(self, task_type: str, max_messages: int = 10, wait_s: int | None = None) -> list[Received]:
        wait = self.settings.poll_seconds if wait_s is None else wait_s
        response = self._with_queue(
            task_type,
            f"receive from {self.queue_name(task_type)}",
            lambda url: self.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ),
        )
        out = []
        for m in response.get("Messages", []):
            count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            out.append(Received(m["MessageId"], m["ReceiptHandle"], m["Body"], count))
        return out

    def ack(self, task_type: str, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])]
            self._with_queue(
                task_type,
                f"delete from {self.queue_name(task_type)}",
                lambda url, e=entries: self.client.delete_message_batch(QueueUrl=url, Entries=e),  # type: ignore[misc]
            )

    def extend(self, task_type: str, receipts: list[str], seconds: int) -> None:
        """Keep messages invisible for ``seconds`` more (0 hands them back at once)."""
        for start in range(0, len(receipts), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": seconds}
                for i, r in enumerate(receipts[start : start + 10])
            ]
            self._with_queue(
                task_type,
                f"change visibility in {self.queue_name(task_type)}",
                lambda url, e=entries: self.client.change_message_visibility_batch(QueueUrl=url, Entries=e),  # type: ignore[misc]
            )

    def depth(self, task_type: str) -> dict[str, int]:
        """Approximate message counts: visible, in flight, delayed."""
        attrs = self._with_queue(
            task_type,
            f"attributes of {self.queue_name(task_type)}",
            lambda url: self.client.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            ),
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def ping(self) -> None:
        """Raise QueueUnavailable unless SQS answers."""
        self._call("list queues", lambda: self.client.list_queues(QueueNamePrefix=self.settings.queue_prefix))


class _QueueGone(Exception):
    pass
