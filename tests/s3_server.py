"""A real S3 API on 127.0.0.1 for the object-storage tests: moto's standalone server, the one
s3fs's own test suite runs against, started and stopped by the tests. Clients reach it through
the standard AWS environment (AWS_ENDPOINT_URL and test credentials), so every process the tests
start (the CLI, Ray workers, torchrun ranks) talks to the same server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """auth=False (the default): any credentials are accepted. auth=True: moto checks every
    request's credentials against its IAM, which knows no keys, so each request is refused
    (InvalidAccessKeyId, 403): a server for the "credentials refused" cases."""

    def __init__(self, log_dir: Path, auth: bool = False):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.auth = auth
        self.log = open(log_dir / ("moto_server_auth.log" if auth else "moto_server.log"), "w")
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else None
        self.proc = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                break
            except OSError as e:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"moto_server did not start on port {self.port} (see {self.log.name})") from e
                time.sleep(0.2)

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use this server as its S3 (and nothing else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def make_bucket(self, name: str) -> str:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
