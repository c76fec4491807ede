"""The `citystream` command: worker, api, publish, simulate, demo, topics, score-csv, native."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kafka.errors import KafkaError

from citystream.logs import configure_logging
from streams.exceptions import CitystreamError
from streams.models import Domain
from streams.settings import Settings


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from processors.worker import create_worker
    from streams.topics import ensure_topics

    ensure_topics(settings.kafka)
    app = create_worker(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from citystream.publish import publish_file

    accepted, rejected = publish_file(settings, Path(args.file), Domain(args.domain))
    print(f"accepted={accepted} rejected={rejected}")
    return 1 if rejected else 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from citystream.simulate import simulate

    simulate(settings, seed=args.seed, rate=args.rate, duration_s=args.duration, backfill_s=args.backfill)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from citystream.demo import run_demo

    return run_demo(settings, duration_s=args.duration, rate=args.rate, api_port=args.port)


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    from citystream.cluster import run_cluster
    from streams.topics import ensure_topics

    if args.workers > settings.kafka.partitions:
        print(
            f"citystream cluster: {args.workers} workers for {settings.kafka.partitions} partitions per topic; "
            f"{args.workers - settings.kafka.partitions} will sit idle",
            file=sys.stderr,
        )
    ensure_topics(settings.kafka)
    return run_cluster(args.workers, args.duration)


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.topics import ensure_topics

    created = ensure_topics(settings.kafka)
    print("created: " + (", ".join(created) if created else "none (all exist)"))
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from api.auth import create_key, list_keys, revoke_key
    from streams.keys import Keys

    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    keys = Keys(settings.redis.key_prefix)
    try:
        if args.action == "create":
            print(create_key(client, keys, args.role, args.name))
            print(f"key {args.name!r} ({args.role}) created; it is shown only this once", file=sys.stderr)
        elif args.action == "list":
            for key in list_keys(client, keys):
                state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
                print(f"{key.name}\t{key.role}\tcreated {key.created_at.isoformat()}\t{state}")
        else:
            revoke_key(client, keys, args.name)
            print(f"key {args.name!r} revoked")
    except redis.RedisError as exc:
        raise CitystreamError(f"Redis is unreachable at CITY_REDIS__URL ({exc}); start it or set the URL") from exc
    finally:
        client.close()
    return 0


def _sites(args: argparse.Namespace, settings: Settings) -> int:
    from processors.traffic.sites import load_sites

    path = Path(args.file) if args.file else settings.sites_file
    table = load_sites(path)
    roads = {(site.road_segment, site.direction) for site in table.sites.values()}
    linked = sum(1 for sensor_id in table.sites if table.upstream(sensor_id) is not None)
    print(f"{path}: {len(table)} detectors on {len(roads)} segment directions, {linked} with an upstream neighbour")
    return 0


def _score_csv(args: argparse.Namespace, settings: Settings) -> int:
    from processors.traffic.anomaly import parse_series_rows, score_series

    path = Path(args.file)
    try:
        with path.open() as handle:
            rows = parse_series_rows(handle)
    except OSError as exc:
        raise CitystreamError(f"cannot read {path}: {exc.strerror or exc}") from None
    except CitystreamError as exc:
        raise CitystreamError(f"{path}: {exc}") from None
    scores = score_series((float(value) for _, value in rows), args.detector)
    out = sys.stdout
    out.write("timestamp,value,anomaly_score\n")
    for (timestamp, value), score in zip(rows, scores, strict=True):
        out.write(f"{timestamp},{value},{score!r}\n")
    return 0


def _native(args: argparse.Namespace, settings: Settings) -> int:
    from processors import native

    if args.action == "build":
        native.build()
        return 0
    verdict = native.check()
    print(("compiled: " if verdict.files else "plain Python: ") + verdict.reason)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="citystream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a stream worker (joins the consumer group)").set_defaults(func=_worker)
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(func=_api)
    pub = sub.add_parser("publish", help="publish a JSON-lines file of events to Kafka")
    pub.add_argument("file")
    pub.add_argument("--domain", required=True, choices=[d.value for d in Domain])
    pub.set_defaults(func=_publish)
    sim = sub.add_parser("simulate", help="publish realistic city sensor streams in real time")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--rate", type=float, default=200.0, help="events per second, all domains together")
    sim.add_argument("--for", dest="duration", type=float, default=None, help="seconds to run (default: forever)")
    sim.add_argument(
        "--backfill", type=float, default=0.0, help="first publish this many seconds of recent history at once"
    )
    sim.set_defaults(func=_simulate)
    demo = sub.add_parser("demo", help="run the whole system on an embedded broker and Redis")
    demo.add_argument("--for", dest="duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--rate", type=float, default=200.0, help="simulated events per second")
    demo.add_argument("--port", type=int, default=8000, help="API port (0: any free port)")
    demo.set_defaults(func=_demo)
    cluster = sub.add_parser("cluster", help="run N workers in one consumer group on this machine")
    cluster.add_argument("--workers", type=int, default=2, help="how many worker processes (at most the partitions)")
    cluster.add_argument("--for", dest="duration", type=float, default=None, help="seconds to run")
    cluster.set_defaults(func=_cluster)
    sub.add_parser("topics", help="create any missing citystream topic").set_defaults(func=_topics)
    sites = sub.add_parser("sites", help="check a traffic site table before workers read it")
    sites.add_argument("file", nargs="?", help="the CSV to check (default: CITY_SITES_FILE)")
    sites.set_defaults(func=_sites)
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--role", required=True, choices=["gateway", "operator", "planner", "admin"])
    create.add_argument("--name", required=True)
    keys_sub.add_parser("list", help="list keys by name, role and state (never the keys themselves)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    keys.set_defaults(func=_keys)
    native = sub.add_parser("native", help="compile the hot processors with mypyc, or say if the worker runs them")
    native.add_argument("action", choices=["build", "status"])
    native.set_defaults(func=_native)
    from processors.traffic.anomaly import DEFAULT_DETECTOR, DETECTORS

    score = sub.add_parser("score-csv", help="score a timestamp,value CSV with a streaming anomaly detector")
    score.add_argument("file", help="CSV with a header line and timestamp,value rows (as NAB data files)")
    score.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    score.set_defaults(func=_score_csv)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors citystream knows print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        configure_logging(settings.log_level)
        return int(args.func(args, settings))
    except CitystreamError as exc:
        print(f"citystream {args.command}: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        servers = os.environ.get("CITY_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        print(
            f"citystream {args.command}: Kafka is unreachable at {servers} ({exc}); start the brokers or set "
            "CITY_KAFKA__BOOTSTRAP_SERVERS",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
