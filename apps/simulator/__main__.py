"""`python -m apps.simulator --scenario steady --port 8900` (also `manage.py simulate`)."""

import argparse
import asyncio
from dataclasses import fields

from apps.simulator.scenarios import SCENARIOS, SimConfig, scenario
from apps.simulator.server import Simulator, new_event_loop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--scenario", default="steady", choices=sorted(SCENARIOS))
    for f in fields(SimConfig):
        kind = {"bool": _bool, "int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"sim_{f.name}",
            type=kind,
            default=None,
            help=f"override the scenario's {f.name}",
        )


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def config_from(options: dict) -> SimConfig:
    overrides = {k[4:]: v for k, v in options.items() if k.startswith("sim_") and v is not None}
    return scenario(options["scenario"], **overrides)


def serve(host: str, port: int, config: SimConfig, announce=print) -> None:
    async def main():
        sim = Simulator(config)
        await sim.start(host, port)
        announce(
            f"simulator ({config.model}) serving at {sim.base_url(host)}; metrics at http://{host}:{sim.port}/metrics"
        )
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            runner.run(main())
        except KeyboardInterrupt:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible inference-server simulator")
    add_arguments(parser)
    args = vars(parser.parse_args())
    serve(args["host"], args["port"], config_from(args))


if __name__ == "__main__":
    main()
