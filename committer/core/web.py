"""The one home of the HTTP client library (httpx): the names the forges' REST calls and the event
receivers use, so the library is imported in one place only."""

from __future__ import annotations

from httpx import BasicAuth, Client, HTTPError, Limits, Response, TimeoutException

__all__ = ["BasicAuth", "Client", "HTTPError", "Limits", "Response", "TimeoutException"]
