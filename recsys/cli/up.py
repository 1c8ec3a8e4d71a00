"""`recsys up | bootstrap | validate`: the first deployment in one command, starter data, and a health check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import (
    OUTPUT,
    EnvOption,
    JsonOption,
    emit,
    err_console,
    info,
    job_progress,
    progress,
    progress_bar,
    settings_for,
    table,
)
from recsys.errors import ErrorCode, RecsysError

DEFAULT_LOCAL_URL = "http://127.0.0.1:8080"
ECR_TARGET = "module.compute.aws_ecr_repository.training"
STARTER = "starter"


# ----- validate


def _local_api_url(settings: Any) -> str:
    from recsys.local.stack import LocalStack

    for component in LocalStack(settings).status().components:
        if component.name == "api" and component.endpoint:
            return component.endpoint
    return DEFAULT_LOCAL_URL


def _api_key(settings: Any, given: str | None) -> str | None:
    if given or settings.is_local:
        return given
    from recsys.secrets import api_key

    try:
        return api_key(settings, "external_api_key")
    except RecsysError:
        return None


def run_validation(
    env: str, url: str | None, api_key: str | None, api_wait_s: float | None = None
) -> dict[str, Any]:
    """Every check of `env` as `{"env", "url", "passed", "checks"}`; an API still serving the version before
    production is asked again for up to `api_wait_s` seconds (default: `API_SETTLE_S`)."""
    from recsys.infra.validate import API_SETTLE_S, validate

    api_wait_s = API_SETTLE_S if api_wait_s is None else api_wait_s

    settings = settings_for(env)
    values = None
    if not settings.is_local:
        from recsys.infra.outputs import outputs

        values = outputs(env, settings_for(env, resolve_names=False))
        url = url or values.get("ApiUrl")
    else:
        url = url or _local_api_url(settings)
    with progress(f"Validating {env}…"):
        checks = validate(settings, url, values, _api_key(settings, api_key), api_wait_s, on_wait=info)
    return {
        "env": env,
        "url": url,
        "passed": all(c.ok for c in checks),
        "checks": [c.to_dict() for c in checks],
    }


def _validation_table(data: dict[str, Any]) -> None:
    rows = [(c["group"], c["name"], "ok" if c["ok"] else "FAILED", c["detail"]) for c in data["checks"]]
    table(f"Validation of {data['env']}", ["group", "check", "result", "detail"], rows)


def _failed_checks(data: dict[str, Any]) -> RecsysError | None:
    failed = [f"{c['group']}/{c['name']}" for c in data["checks"] if not c["ok"]]
    if not failed:
        return None
    return RecsysError(f"{len(failed)} of {len(data['checks'])} checks failed: {', '.join(failed)}",
                       hint="the detail column says what is wrong")  # fmt: skip


def validate_cmd(
    env: EnvOption = "local",
    url: Annotated[str | None, typer.Option(help="API base URL (default: the local API, or ApiUrl).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_API_KEY", help="API Gateway key (default: from the secret).")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=600,
            help="Seconds to wait for an API that still serves the version before production (it loads a new "
            "one on its next registry check; default: twice its poll interval). 0: no wait.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check that an environment is whole: outputs, buckets, tables and keys, the production model's files, the
    last pipeline run, and the API. Exits non-zero when any check fails. Right after a deployment the API may
    still serve the version before for up to its registry poll interval: validate waits for it (--wait).

    **Examples**

        recsys validate --env local

        recsys validate --env local --wait 0

        recsys validate --env dev --json | jq '.data.checks[] | select(.ok | not)'
    """
    data = run_validation(env, url, api_key, wait)
    emit(data, lambda: _validation_table(data))
    error = _failed_checks(data)
    if error is not None:
        if OUTPUT.json:  # the checks above say what failed: one JSON document on stdout
            raise typer.Exit(error.code.exit_code)
        raise error


# ----- bootstrap


def bootstrap_cmd(
    env: EnvOption = "local",
    users: Annotated[int, typer.Option(min=2, max=5_000_000, help="Users in the starter data.")] = 1000,
    videos: Annotated[int, typer.Option(min=2, max=5_000_000, help="Videos in the starter catalogue.")] = 500,
    interactions: Annotated[int, typer.Option(min=10, max=50_000_000, help="Interactions.")] = 10_000,
    recent: Annotated[
        int, typer.Option(min=0, max=50, help="Latest interactions per user written as recent activity.")
    ] = 3,
    json_output: JsonOption = False,
) -> None:
    """Load a starter catalogue, users and interactions (dataset `starter`) and each user's recent activity.

    Ids are integers like the reference examples (users from 12000, videos from 1). Train on it with
    `recsys pipeline run --dataset starter`. Running it again replaces the same data.

    **Examples**

        recsys bootstrap --env local

        recsys bootstrap --env dev --users 5000 --videos 2000 --interactions 100000 --json
    """
    data = _bootstrap(env, users, videos, interactions, recent)
    emit(data, lambda: None)


def _bootstrap(env: str, users: int = 1000, videos: int = 500, interactions: int = 10_000, recent: int = 3):
    from recsys.bootstrap import BootstrapSpec, bootstrap

    settings = settings_for(env)
    if settings.is_local:
        _require_local(settings)
    spec = BootstrapSpec(users=users, videos=videos, interactions=interactions, recent=recent, name=STARTER)
    with job_progress():
        data = bootstrap(settings, spec)
    info(f"Loaded dataset {data['dataset']!r}: {data['videos']} videos, {data['users']} users, "
         f"{data['interactions']} interactions; {data['activity_events']} recent-activity events.")  # fmt: skip
    return data


def _require_local(settings: Any) -> None:
    from recsys.local.stack import LocalStack

    if not LocalStack(settings).aws_healthy():
        raise RecsysError(f"the local stack does not answer at {settings.aws_endpoint_url}",
                          hint="start it: recsys local up", code=ErrorCode.UNAVAILABLE)  # fmt: skip


# ----- up: the steps


def _pipeline(env: str) -> dict[str, Any]:
    from recsys.cli.pipeline import _run_local, _run_remote
    from recsys.pipeline.results import failure_error, pipeline_input

    settings = settings_for(env)
    event = pipeline_input(None, None, None, None, STARTER, None)
    record = _run_local(settings, event) if settings.is_local else _run_remote(settings, event, True)
    if record is None or record["status"] != "SUCCEEDED":
        raise failure_error(record or {}, settings)
    output = record.get("output") or {}
    return {"execution_id": record["execution_id"], "version": output.get("version")}


def _smoke(env: str, url: str, api_key: str | None) -> dict[str, Any]:
    from recsys.smoke import known_user, run_smoke_test

    settings = settings_for(env)
    checks = run_smoke_test(url, user_id=known_user(settings) or "12345", api_key=_api_key(settings, api_key))
    failed = [c for c in checks if not c.ok]
    if failed:
        raise RecsysError(f"smoke test of {url}: {', '.join(f'{c.name} ({c.detail})' for c in failed)}",
                          hint=f"recsys smoke-test --env {env} --url {url}")  # fmt: skip
    return {"url": url, "checks": len(checks)}


def _validate_step(env: str, url: str | None, api_key: str | None) -> dict[str, Any]:
    data = run_validation(env, url, api_key)
    error = _failed_checks(data)
    if error is not None:
        if not OUTPUT.json:
            _validation_table(data)
        raise error
    return {"checks": len(data["checks"])}


def local_steps(env: str, port: int, api_key: str | None) -> dict[str, Any]:
    """The step functions of `up --env local` (what `make demo` does)."""
    from recsys.local.stack import LocalStack

    url = f"http://127.0.0.1:{port}"

    def stack() -> dict[str, Any]:
        result = LocalStack(settings_for(env, resolve_names=False)).up()
        return {"created": len(result["provisioned"]["created"])}

    def cache() -> dict[str, Any]:
        from recsys.pipeline.history import ExecutionStore
        from recsys.serving.batch import all_users, fill_cache
        from recsys.serving.service import RecommendationService

        service = RecommendationService(settings_for(env))
        try:  # the pipeline's PrecomputeCache step already filled /cached for the version it deployed
            output = ExecutionStore(service.settings).load().get("output") or {}
        except Exception:
            output = {}
        done = (output.get("precompute") or {}).get("precompute") or {}
        if done.get("status") == "filled" and done.get("version") == service.models.current().version:
            return {"users": done.get("users"), "by": "the pipeline's PrecomputeCache step"}
        ids = all_users(service)
        with progress_bar("Precomputing", total=len(ids), unit="users") as update:
            written = fill_cache(service, ids, on_progress=update)
        return {"users": written}

    def serve() -> dict[str, Any]:
        return LocalStack(settings_for(env, resolve_names=False)).start_api(port)

    return {
        "stack": stack,
        "bootstrap": lambda: _bootstrap(env),
        "pipeline": lambda: _pipeline(env),
        "cache": cache,
        "serve": serve,
        "validate": lambda: _validate_step(env, url, api_key),
        "smoke": lambda: _smoke(env, url, api_key),
    }


def aws_steps(env: str, image_tag: str, auto_approve: bool, api_key: str | None) -> dict[str, Any]:
    """The step functions of `up --env dev|staging|prod`."""
    from recsys.cli.infra import _confirm, _plan_variables, _refresh_outputs, _show_summary

    def runner():
        from recsys.infra.terraform import TerraformRunner

        runner = TerraformRunner.for_settings(settings_for(env, resolve_names=False))
        with progress(f"terraform init ({env})…"):
            runner.init()
        return runner

    def prerequisites() -> dict[str, Any]:
        from recsys.infra.package import image_functions
        from recsys.infra.up import check_prerequisites, require

        settings = settings_for(env, resolve_names=False)
        needs_images = bool(image_functions()) or settings.profile.training_backend == "sagemaker"
        checks = check_prerequisites(settings, needs_images)
        for c in checks:
            info(
                f"  {'[green]✓[/]' if c.ok else '[red]✗[/]'} {c.name}: {c.detail}"
                + ("" if c.ok else f" — {c.hint}")
            )
        require(checks)
        return {"checked": [c.name for c in checks]}

    def package() -> dict[str, Any]:
        from recsys.infra.package import package as build

        with progress("Building the Lambda packages and the training image context…"):
            result = build()
        return {
            "zips": [z["function"] for z in result["zips"]],
            "training_context": result["training_context"],
        }

    def ecr() -> dict[str, Any]:
        tf = runner()
        with progress(f"terraform plan -target={ECR_TARGET}…"):
            summary = tf.plan(_plan_variables(env, image_tag), targets=[ECR_TARGET])
        if summary.has_changes:
            with progress("terraform apply (ECR repository)…"):
                tf.apply(Path(summary.plan_file))
        values = _refresh_outputs(env, tf)
        url = values.get("TrainingRepositoryUrl")
        if not url:
            raise RecsysError("the stack has no TrainingRepositoryUrl output after the ECR apply",
                              hint=f"recsys outputs --env {env} --refresh")  # fmt: skip
        return {"repository": url}

    def image() -> dict[str, Any]:
        from recsys.infra.images import build_and_push
        from recsys.infra.outputs import outputs
        from recsys.infra.package import package_dir

        settings = settings_for(env, resolve_names=False)
        url = outputs(env, settings)["TrainingRepositoryUrl"]
        context = package_dir(settings.package_dir).parent / "training"  # where `package` writes it
        with progress(f"docker build and push {url}:{image_tag}…"):
            return build_and_push(settings, context, url, image_tag)

    def apply() -> dict[str, Any]:
        tf = runner()
        with progress(f"terraform plan ({env})…"):
            summary = tf.plan(_plan_variables(env, image_tag))
        _show_summary(env, summary)
        if summary.has_changes:
            _confirm(f"Apply this plan to {env}?", auto_approve)
            with progress(f"terraform apply ({env})…"):
                tf.apply(Path(summary.plan_file))
        values = _refresh_outputs(env, tf)
        return {"applied": summary.has_changes, "api_url": values.get("ApiUrl")}

    def api_url() -> str:
        from recsys.infra.outputs import outputs

        return outputs(env, settings_for(env, resolve_names=False))["ApiUrl"]

    return {
        "prerequisites": prerequisites,
        "package": package,
        "ecr": ecr,
        "image": image,
        "apply": apply,
        "bootstrap": lambda: _bootstrap(env),
        "pipeline": lambda: _pipeline(env),
        "validate": lambda: _validate_step(env, None, api_key),
        "smoke": lambda: _smoke(env, api_url(), api_key),
    }


def up_cmd(
    env: EnvOption = "local",
    port: Annotated[int, typer.Option(min=1, max=65535, help="local: the API's port.")] = 8080,
    image_tag: Annotated[str, typer.Option("--image-tag", help="AWS: tag of the training image.")] = "latest",
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", "-y", help="AWS: apply without asking for confirmation.")
    ] = False,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Leave out a step (repeatable), e.g. --skip package.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after this step.")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Forget finished steps; run them all again.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the steps and what is already done.")
    ] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_API_KEY", help="AWS: API Gateway key for the checks.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Bring an environment up in one command, resumably: each step runs once; a rerun starts at the step
    that failed.

    local: start the stack, load the starter data, run the pipeline, fill the cache, serve the API and the
    page, validate, smoke test (what `make demo` does). AWS: check terraform, credentials and docker,
    package, create the ECR repository, build and push the training image, apply the stack, load the
    starter data, run the pipeline on Step Functions, validate, smoke test.

    **Examples**

        recsys up --env local

        recsys up --env dev --auto-approve --image-tag v1

        recsys up --env dev --dry-run --json

        recsys up --env dev --restart --skip image
    """
    from recsys.infra.up import UpState, run_steps, steps_for

    settings = settings_for(env, resolve_names=False)
    if not settings.is_local:
        from recsys.infra.terraform import environment_dir

        environment_dir(env, settings.terraform_dir)  # an unknown environment fails before anything runs
    order = steps_for(env)
    state = UpState.load(settings)
    if restart and not dry_run:
        state.reset()
    if dry_run:
        plan = [{"step": s.name, "does": s.title, "status": "runs every time" if s.always else
                 state.steps.get(s.name, {}).get("status", "to do")} for s in order]  # fmt: skip
        emit(plan, lambda: table(f"recsys up --env {env}", ["step", "does", "status"],
                                 [(p["step"], p["does"], p["status"]) for p in plan]))  # fmt: skip
        return
    functions = (
        local_steps(env, port, api_key)
        if settings.is_local
        else aws_steps(env, image_tag, auto_approve, api_key)
    )
    total = len(order)

    def on_start(i: int, step: Any) -> None:
        info(f"[bold]({i}/{total}) {step.name}[/]: {step.title}")

    def on_skip(i: int, step: Any, why: str) -> None:
        info(f"[dim]({i}/{total}) {step.name}: skipped, {why}[/]")

    def on_done(i: int, step: Any, result: Any) -> None:
        info(f"  [green]✓[/] {step.name}")

    outcomes = run_steps(
        order, functions, state, skip=skip or (), until=until, on_start=on_start, on_skip=on_skip,
        on_done=on_done, stale_after=lambda name, result: name == "stack" and bool(result.get("created")),
    )  # fmt: skip
    data = {"env": env, "steps": [o.to_dict() for o in outcomes]}
    if settings.is_local and any(o.name == "serve" for o in outcomes):
        url = f"http://127.0.0.1:{port}/"
        data["url"] = url
        if not OUTPUT.json:
            err_console.print(f"\n[bold]Open {url}[/] to try it (API docs: {url}docs). "
                              "`recsys local down` stops everything.")  # fmt: skip
    emit(data, lambda: None)
