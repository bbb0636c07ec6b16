import argparse

from apps.simulator.server import SimConfig, SimServer


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible inference-server simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--model", default=SimConfig.model)
    parser.add_argument("--slots", type=int, default=SimConfig.slots)
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    server = SimServer((args.host, args.port), SimConfig(model=args.model, slots=args.slots, api_key=args.api_key))
    print(f"simulator serving {args.model} at {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
