"""docker-compose.yml's `s3-init` script, run for real against a real `weed server -s3` (no Docker needed).

The script is taken from the compose file as it stands, with only the compose escapes (`$$`) undone and the
master's address pointed at this test's server: it must create the bucket, give Veil's key access to it,
and leave the gateway refusing anonymous and wrongly signed requests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.seaweedfs import SeaweedServer
from tests.support.services import ServiceError

REPO = Path(__file__).resolve().parents[2]
BUCKET, ACCESS_KEY, SECRET_KEY = "veil", "veil-compose-test", "compose-test-secret-0123456789"


class OpenSeaweed(SeaweedServer):
    """As compose starts it: no identity file, so the gateway is open until s3-init configures a key."""

    def _command(self) -> list[str]:
        return [arg for arg in super()._command() if not arg.startswith("-s3.config=")]

    def _ping(self) -> None:
        urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)  # compose's health check


@pytest.fixture
def seaweed() -> Iterator[OpenSeaweed]:
    try:
        server = OpenSeaweed()
    except ServiceError as exc:
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.close()


def client(url: str, **credentials: Any) -> Any:
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                    **({} if credentials else {"signature_version": UNSIGNED}))
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config, **credentials)


def test_s3_init_creates_the_bucket_and_locks_the_gateway_to_veils_key(seaweed: OpenSeaweed) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    master = f"127.0.0.1:{seaweed._ports['master.port']}.{seaweed._ports['master.port.grpc']}"
    script = compose["services"]["s3-init"]["command"][0].replace("$$", "$").replace("seaweedfs:9333", master)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "BUCKET": BUCKET, "ACCESS_KEY": ACCESS_KEY, "SECRET_KEY": SECRET_KEY}
    done = subprocess.run(["sh", "-ec", script], env=env, cwd=seaweed.dir, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"bucket {BUCKET} ready" in done.stdout and SECRET_KEY not in done.stdout + done.stderr

    veil = client(seaweed.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    veil.put_object(Bucket=BUCKET, Key="inputs/x/original", Body=b"frame")
    assert veil.get_object(Bucket=BUCKET, Key="inputs/x/original")["Body"].read() == b"frame"
    for outsider in (client(seaweed.url),
                     client(seaweed.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key="wrong")):
        with pytest.raises(ClientError):
            outsider.get_object(Bucket=BUCKET, Key="inputs/x/original")

    # Run twice (a `docker compose up` after a restart): the bucket exists already and that is fine.
    again = subprocess.run(["sh", "-ec", script], env=env, cwd=seaweed.dir, capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert veil.get_object(Bucket=BUCKET, Key="inputs/x/original")["Body"].read() == b"frame"
