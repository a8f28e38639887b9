"""A local OAuth token endpoint and a service-account key that uses it: the connection-based credential path of the
Google provider, end to end, without Google.

A service-account key's ``token_uri`` says where google-auth trades its signed JWT for an access token; pointing it
at a server on 127.0.0.1 lets tests put a real key (freshly generated RSA) into an Airflow connection
(``AIRFLOW_CONN_<ID>``), have ``GoogleBaseHook`` build service-account credentials from it, and count the token
requests those credentials make: proof that the clients used the connection, not ADC or anonymous credentials.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class TokenServer:
    url: str
    grants: list[str] = field(default_factory=list)
    """The JWT assertions received, one per token request."""

    def service_account_key(self, project: str, email: str = "adpipeline-test@test-project.iam.gserviceaccount.com"):
        """A service-account key dict (as in a downloaded key file) whose token_uri is this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }

    def connection_json(self, project: str) -> str:
        """An ``AIRFLOW_CONN_<ID>`` value (JSON form) for a google_cloud_platform connection with this key."""
        extra = {"keyfile_dict": json.dumps(self.service_account_key(project)), "project": project}
        return json.dumps({"conn_type": "google_cloud_platform", "extra": extra})


@contextlib.contextmanager
def token_server() -> Generator[TokenServer, None, None]:
    """Serve ``POST /token`` on a free 127.0.0.1 port; every grant gets a fresh one-hour bearer token."""
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = parse_qs(body)
            server: TokenServer = state["server"]
            server.grants.extend(form.get("assertion", []))
            payload = json.dumps({"access_token": f"test-token-{len(server.grants)}", "expires_in": 3600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["server"] = TokenServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
