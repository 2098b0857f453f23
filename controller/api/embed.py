"""The API served on a thread beside the reconcile loop (`corral up --api ADDR`)."""

from __future__ import annotations

import logging
from pathlib import Path

from controller.api.app import create_app
from controller.api.metrics import ControllerMetrics
from controller.api.serve import ServeConfigError, ServerThread, build_server
from controller.api.tokens import TokenStore
from controller.loop import Controller, PassResult

log = logging.getLogger(__name__)


class EmbeddedApi:
    """A running API beside a Controller: its writes wake the loop, its passes feed metrics."""

    def __init__(self, controller: Controller, tokens: TokenStore, thread: ServerThread) -> None:
        self.controller = controller
        self.tokens = tokens
        self.thread = thread
        self.metrics: ControllerMetrics = thread.server.config.app.state.metrics

    def observe_pass(self, result: PassResult) -> None:
        """The loop's on_pass hook: record the pass in the metrics."""
        self.metrics.observe_pass(result)

    def stop(self) -> None:
        self.thread.stop()
        self.tokens.close()


def start_embedded_api(
    controller: Controller,
    listen: str,
    certs: Path | None,
    db: str | None,
    state_dir: Path | None,
) -> EmbeddedApi:
    """Start serving the API for `controller`; exit with the reason on bad options.

    Without `certs` it serves plain HTTP, on loopback only.
    """
    tokens = TokenStore.open(db, state_dir)
    metrics = ControllerMetrics(controller.store)
    app = create_app(controller.store, tokens, controller=controller, metrics=metrics)
    try:
        server = build_server(app, listen, certs, insecure_dev=certs is None)
        thread = ServerThread(server)
        thread.start()
    except (ServeConfigError, RuntimeError) as exc:
        tokens.close()
        raise SystemExit(f"error: --api: {exc}") from exc
    scheme = "https" if certs else "http"
    log.warning(
        "serving the API on %s://%s (dashboard: %s://%s/ui/)", scheme, listen, scheme, listen
    )
    return EmbeddedApi(controller, tokens, thread)
