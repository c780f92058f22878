"""The model servers started as their users start them, with the README's lines added.

    python -m tests.model_servers.serve kserve PORT CONFIG
    python -m tests.model_servers.serve mlserver FOLDER CONFIG   # FOLDER as `mlserver start FOLDER`

The suites run these as real processes on 127.0.0.1 (see test_*_process in the suites).
"""

from __future__ import annotations

import sys


def kserve_main(port: int, config: str) -> None:
    import kserve
    from kserve.model_server import app

    from boxkite_middleware import BoxkiteASGIMiddleware

    from .kserve_app import models

    # docs/model-servers.md, KServe:
    app.add_middleware(BoxkiteASGIMiddleware, config=config)
    kserve.ModelServer(http_port=port, enable_grpc=False, grace_period=2).start(models())


def mlserver_main(folder: str, config: str) -> None:
    import asyncio

    from mlserver import MLServer
    from mlserver.cli.serve import load_settings

    from boxkite_middleware import BoxkiteASGIMiddleware

    # docs/model-servers.md, MLServer: what `mlserver start FOLDER` does, plus one line.
    async def main():
        settings, models_settings = await load_settings(folder)
        server = MLServer(settings)
        server._rest_server._app.add_middleware(BoxkiteASGIMiddleware, config=config)
        await server.start(models_settings)

    asyncio.run(main())


if __name__ == "__main__":
    server, where, config = sys.argv[1:4]
    if server == "kserve":
        kserve_main(int(where), config)
    else:
        mlserver_main(where, config)
