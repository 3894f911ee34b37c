"""Debian mosquitto on 127.0.0.1:free-port (anonymous, no persistence)."""

from __future__ import annotations

import getpass

from .procs import require_binary
from .server import Server


class Mosquitto(Server):
    """``with Mosquitto() as mq: aiomqtt.Client(mq.host, mq.port)``.

    ``extra_config`` lines are appended to the generated mosquitto.conf.
    """

    name = "mosquitto"
    scheme = "mqtt"

    def __init__(self, *, port: int | None = None, extra_config: str = "") -> None:
        super().__init__(port=port)
        self.extra_config = extra_config

    def command(self) -> list[str]:
        binary = require_binary("mosquitto")
        conf = self.workdir() / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    # Without an explicit listener mosquitto 2 binds localhost:1883.
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    # As root it would switch to user "mosquitto": that clears
                    # the parent-death signal and cannot read our temp dir.
                    f"user {getpass.getuser()}",
                    "persistence false",
                    "log_dest stderr",  # unbuffered, unlike stdout to a file
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    self.extra_config,
                    "",
                ]
            )
        )
        return [binary, "-c", str(conf)]
