"""The same round trip on both stores: upload through the API → sent with a reply → the file view.

S3 is moto's S3 server on 127.0.0.1 (the real S3 HTTP protocol, spoken by boto3 through
django-storages, exactly as production talks to AWS or MinIO); local files are a temporary
folder. Each store is chosen by ``STORAGES`` as smartchat/settings/product.py builds it.
"""

from __future__ import annotations

import io

import boto3
import pytest
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from helpdesk.conversations.models import Attachment
from tests.conftest import login
from tests.test_attachments import API, PDF, PNG

BUCKET = "smartchat-files"


@pytest.fixture
def s3(settings, monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.ATTACHMENTS_S3_BUCKET = BUCKET
    settings.ATTACHMENTS_S3_ENDPOINT_URL = endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "location": "acme-prod",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    storages._storages.pop("attachments", None)
    yield client
    storages._storages.pop("attachments", None)
    server.stop()


@pytest.fixture
def local(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield tmp_path
    storages._storages.pop("attachments", None)


def round_trip(client, cast, data: bytes, name: str):
    login(client, cast.bob)
    stream = io.BytesIO(data)
    stream.name = name
    uploaded = client.post(f"{API}{cast.conversation.pk}/attachments", {"file": stream})
    assert uploaded.status_code == 201, uploaded.content
    sent = client.post(
        f"{API}{cast.conversation.pk}/reply",
        {"body": "Here you are", "attachments": [uploaded.json()["id"]]},
        content_type="application/json",
    )
    assert sent.status_code == 201, sent.content
    (attachment,) = sent.json()["attachments"]
    served = client.get(attachment["url"])
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == data
    client.logout()
    assert client.get(attachment["url"]).status_code == 404
    return Attachment.objects.get(pk=attachment["id"]), served


def test_files_round_trip_through_s3(client, cast, s3):
    attachment, served = round_trip(client, cast, PNG, "cat.png")
    assert served["Content-Type"] == "image/png"
    key = attachment.file.name
    # In the bucket under the prefix, by company and month and a random name: not the file's own name.
    objects = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in objects] == [f"acme-prod/{key}"]
    assert key.startswith(f"{cast.acme.pk}/") and "cat" not in key
    assert s3.get_object(Bucket=BUCKET, Key=f"acme-prod/{key}")["Body"].read() == PNG
    _, document = round_trip(client, cast, PDF, "plan.pdf")
    assert document["Content-Disposition"] == 'attachment; filename="plan.pdf"'


def test_files_round_trip_through_local_files(client, cast, local):
    attachment, _ = round_trip(client, cast, PDF, "plan.pdf")
    assert (local / attachment.file.name).read_bytes() == PDF
