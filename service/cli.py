"""``sovrisk``: serve the API, score providers, run what-if scenarios, validate a dataset.

sovrisk serve [--data DIR] [--store var/|postgresql://...] [--tokens FILE] [--host H] [--port N]
sovrisk score [PROVIDER] [--as-of YYYY-MM-DD] [--json] [--data DIR]
sovrisk scenario [--country ISO3[:F]] [--node ID[:F]] [--weeks W] [--activate-regime ID]
                 [--share C:CATEGORY:S:X] [--param NAME=V] [--file REQUEST.json] [--json]
sovrisk simulate [--samples N] [--seed S] [--providers a,b] [--sensitivity] [--json]
sovrisk trajectory [PROVIDER ...] [--from 2024Q1] [--to 2027Q4] [--json]
sovrisk validate DIR
sovrisk import DIR -m MESSAGE [--format bundle|eto] [--dry-run] [--store S | --server H:P]
sovrisk export DIR [--version N] [--store S | --server H:P]
sovrisk history [PROVIDER] [--store S]
sovrisk token create --principal NAME --role reader|editor|admin
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# Only the standard library and light modules here: `sovrisk --help` and the listings start
# without the engine (numpy, scipy, networkx), which each command imports when it runs.
from sovrisk.models.scoring.limits import DEFAULT_DRAWS
from sovrisk.service import listing_cli, report_cli, screening_cli, store_cli, trajectory_cli
from sovrisk.service.executor_option import add_executor_argument, use_executor
from sovrisk.service.paths import DEFAULT_DATA_DIR, default_store, default_tokens_file, display
from sovrisk.service.source import add_source_arguments, open_source

if TYPE_CHECKING:
    from sovrisk.models.scoring.assessment import RiskAssessment
    from sovrisk.models.scoring.params import ScoringParams
    from sovrisk.models.scoring.risk_engine import RiskEngine
    from sovrisk.service.server import ServeConfig

#: Exit codes (``sovrisk --help`` lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # invalid data, a rejected edit, a store error
EXIT_USAGE = 2  # bad flags or parameter values
EXIT_PROPERTIES_FAIL = 3  # `sovrisk validity`: a METHODS §12 property does not hold
EXIT_NOT_FOUND = 4  # an unknown provider, node, country or version

EPILOG = """exit codes: 0 ok; 1 failed (invalid data, rejected edit, store error); 2 usage (bad
flags or parameter values); 3 a validity property does not hold; 4 not found.

Analysis commands read the latest version of the store `sovrisk serve` serves (env
SOVRISK_STORE; see --store) and say which on stderr; --data DIR reads a folder instead.
Find ids with `sovrisk providers`, `sovrisk nodes`, `sovrisk countries`."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else _raise()
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD") from None


def _env(name: str, default: str = "") -> str:
    """A flag's default from the environment (every serve flag has one: docs/operations.md)."""
    return os.environ.get(name) or default


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in _env(name).split(",") if item.strip()]


def _env_flag(name: str) -> bool:
    """A boolean flag's default: 1, true, yes or on (any case) in the environment."""
    return _env(name).strip().lower() in ("1", "true", "yes", "on")


def _weight(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid weight {text!r}: use NAME=NUMBER") from None


def _raise() -> dt.date:
    raise ValueError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sovrisk",
        description="Silicon-sovereignty risk scores for cloud providers' AI-accelerator supply "
        "(0-100, higher = riskier).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the package and model versions"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        default=str(DEFAULT_DATA_DIR),
        help="dataset that seeds an empty store (default: the bundled one)",
    )
    common.add_argument(
        "--store",
        default=default_store(),
        help="graph store: a directory or .db file (SQLite) or postgresql://... "
        f"(env SOVRISK_STORE; default {display(default_store())})",
    )
    common.add_argument(
        "--tokens",
        default=None,
        help="bearer-token file (env SOVRISK_TOKENS_FILE; default tokens.toml beside the "
        "store, where `sovrisk token create --store` writes)",
    )
    common.add_argument(
        "--poll-interval",
        type=float,
        default=float(_env("SOVRISK_POLL_INTERVAL", "2.0")),
        help="seconds between checks for versions committed by other replicas (0 = never; env "
        "SOVRISK_POLL_INTERVAL; default 2)",
    )
    common.add_argument(
        "--host",
        default=os.environ.get("SOVRISK_HOST", "127.0.0.1"),
        help="address to bind (env SOVRISK_HOST; default 127.0.0.1)",
    )
    common.add_argument(
        "--print-ranking", action="store_true", help="print the provider ranking on start"
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=_env("SOVRISK_LOG_FORMAT", "text"),
        help="text, or one JSON object per line with the request fields as keys (env "
        "SOVRISK_LOG_FORMAT; default text)",
    )
    common.add_argument(
        "--log-level",
        default=_env("SOVRISK_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env SOVRISK_LOG_LEVEL; default INFO)",
    )

    add_executor_argument(common)
    common.add_argument(
        "--interval-draws",
        type=int,
        default=int(os.environ.get("SOVRISK_INTERVAL_DRAWS", DEFAULT_DRAWS)),
        help=f"seeded draws behind the score intervals when a request does not say "
        f"(default {DEFAULT_DRAWS}; 0 = none; env SOVRISK_INTERVAL_DRAWS)",
    )
    common.add_argument(
        "--cors-origin",
        action="append",
        default=_env_list("SOVRISK_CORS_ORIGINS"),
        metavar="ORIGIN",
        help="a browser origin allowed to call the HTTP gateway, e.g. https://app.example.com "
        "(repeatable; '*' = any; env SOVRISK_CORS_ORIGINS, comma-separated; default none)",
    )
    common.add_argument(
        "--allowed-host",
        action="append",
        default=_env_list("SOVRISK_ALLOWED_HOSTS"),
        metavar="HOST",
        help="a Host header the HTTP gateway answers (repeatable; '*' = any; env "
        "SOVRISK_ALLOWED_HOSTS, comma-separated; default: the loopback names when bound to "
        "loopback, which stops DNS rebinding)",
    )
    common.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("SOVRISK_METRICS_PORT")) if _env("SOVRISK_METRICS_PORT") else None,
        help="serve Prometheus metrics on http://HOST:PORT/metrics (env SOVRISK_METRICS_PORT; "
        "default off)",
    )
    common.add_argument(
        "--tls-cert",
        default=_env("SOVRISK_TLS_CERT") or None,
        metavar="FILE",
        help="serve gRPC and the gateway over TLS with this PEM certificate chain (needs "
        "--tls-key; env SOVRISK_TLS_CERT; default off: plaintext)",
    )
    common.add_argument(
        "--tls-key",
        default=_env("SOVRISK_TLS_KEY") or None,
        metavar="FILE",
        help="the certificate's PEM private key, unencrypted (env SOVRISK_TLS_KEY)",
    )
    common.add_argument(
        "--tls-client-ca",
        default=_env("SOVRISK_TLS_CLIENT_CA") or None,
        metavar="FILE",
        help="mutual TLS: require client certificates signed by this PEM CA (env "
        "SOVRISK_TLS_CLIENT_CA; default: no client certificates)",
    )
    common.add_argument(
        "--require-read-token",
        action="store_true",
        default=_env_flag("SOVRISK_REQUIRE_READ_TOKEN"),
        help="every read needs a valid bearer token of any role, not only edits (health, "
        "reflection, /healthz and /openapi.json stay open; env SOVRISK_REQUIRE_READ_TOKEN=1)",
    )
    serve = sub.add_parser(
        "serve", parents=[common], help="run the gRPC server (and the HTTP/JSON gateway)"
    )
    serve.add_argument(
        "--check-config",
        action="store_true",
        help="check the ports, store, seed folder, token file and TLS files, print what was "
        "found, and exit (0 if all is well, 1 otherwise) without serving",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(_env("SOVRISK_PORT", "50051")),
        help="gRPC port (0 = any free port; env SOVRISK_PORT; default 50051)",
    )
    serve.add_argument(
        "--http-port",
        type=int,
        default=int(_env("SOVRISK_HTTP_PORT")) if _env("SOVRISK_HTTP_PORT") else None,
        help="also serve the HTTP/JSON gateway on this port (0 = any free port; env "
        "SOVRISK_HTTP_PORT; default off)",
    )
    gateway = sub.add_parser(
        "gateway", parents=[common], help="run only the HTTP/JSON gateway (same servicers)"
    )
    gateway.add_argument(
        "--port", dest="http_port", type=int, default=8080, help="HTTP port (default 8080)"
    )
    gateway.set_defaults(port=0, no_grpc=True)

    score = sub.add_parser("score", help="score one provider (detail) or all (ranking)")
    score.add_argument("provider", nargs="?", help="provider id, e.g. aws (default: all)")
    add_source_arguments(score, server=True)
    score.add_argument("--as-of", type=_date, help="date the score speaks for (YYYY-MM-DD)")
    score.add_argument(
        "--horizon",
        type=float,
        default=13.0,
        help="headline horizon in weeks: 4, 13 (default), 26, 52 or 104",
    )
    score.add_argument("--json", action="store_true", help="JSON in the proto JSON mapping")
    score.add_argument(
        "--draws",
        type=int,
        default=DEFAULT_DRAWS,
        help=f"seeded draws of the data's ranges behind the 90 %% intervals and rank "
        f"certainty (default {DEFAULT_DRAWS}, ~2 s each; 0 = none)",
    )
    score.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    score.add_argument(
        "--weight",
        action="append",
        default=[],
        type=_weight,
        metavar="SUB_SCORE=W",
        help="override a sub-score's weight, e.g. structural=0.5 (repeatable; the weights are "
        "then renormalised to sum to 1, and the result says so)",
    )

    scenario = sub.add_parser(
        "scenario",
        help="what-if: compare providers before and after perturbations",
        description="Perturbations come from flags, a JSON file in the proto JSON mapping of "
        "sovrisk.v1.RunScenarioRequest, or both (flags are appended).",
    )
    add_source_arguments(scenario)
    scenario.add_argument("--file", help="RunScenarioRequest as JSON (proto JSON mapping)")
    scenario.add_argument("--name", default="", help="a name for the scenario")
    scenario.add_argument(
        "--country",
        action="append",
        default=[],
        metavar="ISO3[:FRACTION]",
        help="sites in a country lose FRACTION (default 1) of capacity, e.g. TWN or KOR:0.5 "
        "(ISO 3166-1 alpha-3 codes: `sovrisk countries`)",
    )
    scenario.add_argument(
        "--blockade",
        action="append",
        default=[],
        metavar="ISO3[:FRACTION]",
        help="edges crossing a country's border lose FRACTION (default 1) of their flow, e.g. "
        "TWN:0.6 (domestic edges go on)",
    )
    scenario.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="ID[:FRACTION]",
        help="a node loses FRACTION (default 1) of capacity, e.g. tsmc-cowos-l:0.3",
    )
    scenario.add_argument("--weeks", type=float, default=0.0, help="duration of the losses")
    scenario.add_argument(
        "--activate-regime",
        action="append",
        default=[],
        metavar="ID[:SEVERITY]",
        help="force an existing regime into force (optionally at another severity), e.g. "
        "cn-mofcom-2025-10-rare-earths or cn-mofcom-2025-10-rare-earths:1",
    )
    scenario.add_argument(
        "--share",
        action="append",
        default=[],
        metavar="CONSUMER:CATEGORY:SUPPLIER:SHARE",
        help="set a supply share, e.g. aws-trainium3:packaging:samsung-icube:0.3",
    )
    scenario.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter, e.g. weights.structural=0.5 or capacity.tsmc-cowos-l=0.9",
    )
    scenario.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="POOL[:FRACTION]",
        help="every node of a constrained pool loses FRACTION (default 1), e.g. cowos:0.2",
    )
    scenario.add_argument(
        "--capacity",
        action="append",
        default=[],
        metavar="POOL:FACTOR[:YIELD]",
        help="scale a pool's capacity (above 1 adds) and optionally set its yield, e.g. "
        "cowos:0.8 (a 20 %% shortfall) or cowos:1:0.9",
    )
    scenario.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="NODE:ISO3:SHARE[:add]",
        help="move capacity so the country holds SHARE of the node's (e.g. "
        "tsmc-cowos-l:USA:0.2), or with ':add' build SHARE more of it there",
    )
    scenario.add_argument(
        "--alternate",
        action="append",
        default=[],
        metavar="SUPPLIER:ALTERNATE:CATEGORY:LEAD_WEEKS:SPARE",
        help="a second source qualifiable after LEAD_WEEKS, taking up to SPARE of the "
        "supplier's flow, e.g. tsmc-cowos-l:samsung-icube:packaging:26:0.3",
    )
    scenario.add_argument(
        "--allocation",
        choices=["pro_rata", "reservations_first", "custom_first", "priority"],
        help="how constrained pools share their capacity (default: node by node)",
    )
    scenario.add_argument(
        "--priority", default="", help="claimants in order for --allocation priority (a,b,c)"
    )
    scenario.add_argument("--providers", default="", help="comma-separated ids (default all)")
    scenario.add_argument("--as-of", type=_date, help="date the comparison speaks for")
    scenario.add_argument(
        "--horizon",
        type=float,
        default=13.0,
        help="headline horizon in weeks: 4, 13 (default), 26, 52 or 104",
    )
    scenario.add_argument("--json", action="store_true", help="JSON in the proto JSON mapping")

    simulate = sub.add_parser(
        "simulate", help="correlated Monte Carlo of disruptions (loss percentiles, CVaR95)"
    )
    add_source_arguments(simulate)
    simulate.add_argument("--samples", type=int, default=10_000, help="number of samples")
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument("--providers", default="", help="comma-separated ids (default all)")
    simulate.add_argument(
        "--events", help="events CSV (default: the dataset's events.csv)", default=None
    )
    simulate.add_argument(
        "--node-failure-probability",
        type=float,
        default=None,
        help="probability over the horizon that each producing node fails on its own",
    )
    simulate.add_argument(
        "--sensitivity", action="store_true", help="rank drivers with scikit-learn"
    )
    simulate.add_argument("--json", action="store_true", help="JSON in the proto JSON mapping")
    add_executor_argument(simulate)

    validate = sub.add_parser("validate", help="validate a dataset directory")
    validate.add_argument("dir", help="dataset directory")

    validity = sub.add_parser(
        "validity",
        help="does the model tell providers apart? country impacts per horizon, sub-score "
        "spreads, floor, CoWoS and Taiwan shocks, ranking, METHODS v2 §12 properties",
    )
    add_source_arguments(validity)
    validity.add_argument("--as-of", type=_date, help="date the report speaks for")
    store_cli.add_parsers(sub)
    listing_cli.add_parsers(sub)
    report_cli.add_parser(sub)
    screening_cli.add_parser(sub)
    trajectory_cli.add_parser(sub)
    return parser


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked (it imports the model's version)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str = "") -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version_text())
        parser.exit()


def _version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from sovrisk.models.scoring.params import MODEL_VERSION

    try:
        package = version("sovrisk")
    except PackageNotFoundError:  # run from a checkout that was never installed
        package = "unknown"
    return f"sovrisk {package} (model {MODEL_VERSION})"


def cmd_validate(args: argparse.Namespace) -> int:
    import time

    from sovrisk.models.errors import DataValidationError
    from sovrisk.models.graph.bundle import load_bundle

    start = time.perf_counter()
    try:
        graph, supplements = load_bundle(args.dir)
    except DataValidationError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    extra = [f"{len(supplements.events)} events"]
    if supplements.resilience is not None:
        extra.append("resilience data")
    if supplements.demand is not None:
        extra.append("provider demand")
    counts = ", ".join(f"{k} {v}" for k, v in graph.counts_by_kind().items())
    print(
        f"OK {args.dir}: version {graph.version_id}; {counts}; {len(graph.edges)} supply edges; "
        + ", ".join(extra)
    )
    print(f"content hash {graph.content_hash} ({1000 * (time.perf_counter() - start):.0f} ms)")
    return 0


def _params(engine: RiskEngine, args: argparse.Namespace) -> ScoringParams:
    from sovrisk.models.scoring.params import ScoringParams

    return ScoringParams.build(
        as_of=args.as_of or engine.graph.info.as_of,
        horizon_weeks=args.horizon,
        weights=dict(getattr(args, "weight", None) or []) or None,
    )


def cmd_score(args: argparse.Namespace) -> int:
    if args.server:
        from sovrisk.service.remote_cli import score_remote

        return score_remote(args)
    from sovrisk.models.scoring.uncertainty import cached_uncertainty, check_draws
    from sovrisk.service.text_report import assessment_detail, ranking_table, uncertainty_lines

    engine = open_source(args).engine
    params = _params(engine, args)
    if args.provider:
        assessments = [engine.assess(args.provider.removeprefix("providers/"), params)]
    else:
        assessments = engine.assess_all(params)
    uncertainty = cached_uncertainty(engine, params, check_draws(args.draws, "--draws"), args.seed)
    _warn_outside_series(params.as_of, assessments)
    if args.json:
        from sovrisk.service.converters import assessments_json

        print(assessments_json(engine.graph, assessments, uncertainty))
    elif args.provider:
        print(assessment_detail(assessments[0]))
        print("\n".join(uncertainty_lines(uncertainty, assessments[0].provider)).lstrip("\n"))
    else:
        print(ranking_table(assessments, uncertainty))
        print("\n".join(f"note: {n}" for n in params.weight_notes()))
    return 0


def _warn_outside_series(as_of: dt.date, assessments: Sequence[RiskAssessment]) -> None:
    """Say on stderr when the date lies outside the dated series (fleets, capacities, capex),
    whose nearest points were then used: the detail view lists each, a ranking would not."""
    notes = sorted({n for a in assessments for n in a.series_notes})
    if notes:
        print(
            f"warning: {as_of.isoformat()} lies outside the data's dated series; their nearest "
            f"points were used ({len(notes)} series, e.g. {notes[0]})",
            file=sys.stderr,
        )


def cmd_scenario(args: argparse.Namespace) -> int:
    from sovrisk.service.scenario_cli import run_from_args

    return run_from_args(args)


def cmd_validity(args: argparse.Namespace) -> int:
    from sovrisk.models.scoring.validity import render, validity_report

    engine = open_source(args).engine
    report = validity_report(engine, engine.default_params(args.as_of))
    print(render(report))
    return 0 if report.holds else 3


def cmd_simulate(args: argparse.Namespace) -> int:
    from sovrisk.service.simulation_cli import run_from_args

    return run_from_args(args)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import faulthandler

    from sovrisk.service import logs
    from sovrisk.service.server import PortInUse, ServeConfig, serve
    from sovrisk.service.tls import TlsConfigError
    from sovrisk.service.tracing import TracingConfigError

    # A crash in native code (solver, gRPC core) leaves a traceback (needs a real stderr).
    with contextlib.suppress(ValueError, OSError):
        faulthandler.enable()

    logs.configure(args.log_level, args.log_format)

    if getattr(args, "check_config", False):
        from sovrisk.service.server import check_config

        checks = check_config(_serve_config(args, ServeConfig))
        for c in checks:
            print(f"{'ok ' if c.ok else 'BAD'}  {c.what:<15} {c.detail}")
        return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED
    try:
        asyncio.run(serve(_serve_config(args, ServeConfig)))
    except (PortInUse, TlsConfigError, TracingConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _serve_config(args: argparse.Namespace, config: type[ServeConfig]) -> ServeConfig:
    return config(
        data_dir=args.data,
        store=args.store,
        tokens=Path(args.tokens) if args.tokens else default_tokens_file(args.store),
        host=args.host,
        port=args.port,
        poll_interval=args.poll_interval,
        print_ranking=args.print_ranking,
        grpc=not getattr(args, "no_grpc", False),
        http_port=args.http_port,
        interval_draws=args.interval_draws,
        cors_origins=tuple(args.cors_origin),
        allowed_hosts=tuple(args.allowed_host),
        metrics_port=args.metrics_port,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        tls_client_ca=Path(args.tls_client_ca) if args.tls_client_ca else None,
        require_read_token=args.require_read_token,
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; an unknown flag is reported with the usage of the command it was given to."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = _subparsers(parser).get(args.command, parser)
        for name in ("token_command",):  # a nested command's own usage
            nested = getattr(args, name, None)
            if nested:
                command = _subparsers(command).get(nested, command)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its sub-parsers on the action
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "validity": cmd_validity,
    "score": cmd_score,
    "scenario": cmd_scenario,
    "simulate": cmd_simulate,
    "serve": cmd_serve,
    "gateway": cmd_serve,
    "import": store_cli.cmd_import,
    "export": store_cli.cmd_export,
    "revert": store_cli.cmd_revert,
    "history": store_cli.cmd_history,
    "token": store_cli.cmd_token,
    "providers": listing_cli.run,
    "nodes": listing_cli.run,
    "countries": listing_cli.run,
    "screen": screening_cli.cmd_screen,
    "report": report_cli.cmd_report,
    "trajectory": trajectory_cli.run,
}


def _failure(exc: Exception) -> tuple[int, str] | None:
    """Exit code and message of an expected failure; None for a bug (its traceback shows).
    The error types are imported only here, when a command failed, to keep starts fast."""
    from sovrisk.models.errors import DataValidationError, InvalidParameterError, NotFoundError
    from sovrisk.models.graph.editing import EditRejected
    from sovrisk.service.store import StoreError, VersionNotFoundError

    if isinstance(exc, DataValidationError | EditRejected):
        return EXIT_FAILED, f"INVALID: {exc}"
    if isinstance(exc, NotFoundError | VersionNotFoundError):
        return EXIT_NOT_FOUND, f"error: {exc}"
    if isinstance(exc, InvalidParameterError):
        return EXIT_USAGE, f"error: {exc}"
    if isinstance(exc, StoreError):
        return EXIT_FAILED, f"error: {exc}"
    return _grpc_failure(exc)


def _grpc_failure(exc: Exception) -> tuple[int, str] | None:
    """A gRPC error from ``--server``: its status as an exit code, its message as the line."""
    grpc = sys.modules.get("grpc")
    if grpc is None or not isinstance(exc, grpc.RpcError):
        return None
    code = exc.code()
    text = f"error: {code.name}: {exc.details()}"
    if code is grpc.StatusCode.NOT_FOUND:
        return EXIT_NOT_FOUND, text
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return EXIT_USAGE, text
    return EXIT_FAILED, text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        use_executor(getattr(args, "executor", "local"))
        return HANDLERS[args.command](args)
    except Exception as exc:
        failure = _failure(exc)
        if failure is None:
            raise
        code, message = failure
        print(message, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
