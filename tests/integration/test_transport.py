"""The SQS transport against a real SQS endpoint: queue layout and credentials."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from core.settings import Settings
from core.sqs import Transport, credentials


def test_each_type_gets_a_prefixed_queue_with_a_dead_letter_queue_and_lease_visibility(settings: Settings) -> None:
    transport = Transport(settings)
    url = transport.ensure_queue("mult3")
    assert url.endswith(f"/{settings.queue_prefix}mult3")
    attrs = transport.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == str(settings.lease_seconds)
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == settings.max_receives
    assert redrive["deadLetterTargetArn"].endswith(f"{settings.queue_prefix}mult3-dlq")


def test_a_vanished_queue_is_recreated_on_the_next_call(settings: Settings) -> None:
    transport = Transport(settings)
    url = transport.ensure_queue("sum2")
    transport.client.delete_queue(QueueUrl=url)
    assert transport.depth("sum2") == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_credentials_come_from_the_secret_file_when_present(settings: Settings, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "aws_credentials").write_text(
        "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n"
    )
    s = dataclasses.replace(settings, secrets_dir=str(secrets))
    assert credentials(s) == {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s3cr3t"}
    # and they are what the client signs with
    client = Transport(s).client
    assert client._request_signer._credentials.access_key == "AKIDEXAMPLE"
