"""`recsys package | plan | deploy | destroy | outputs`: build the Lambda packages and drive Terraform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, info, progress, progress_bar, settings_for, table
from recsys.errors import ErrorCode, RecsysError

FunctionOption = Annotated[
    str | None,
    typer.Option("--function", "-f", help="Catalogue key of one function (e.g. api); default: all of them."),
]
AutoApproveOption = Annotated[
    bool, typer.Option("--auto-approve", "-y", help="Apply the plan without asking for confirmation.")
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="Limit to a resource address (repeatable), e.g. module.compute.aws_ecr_repository.training.",
    ),
]
ImageTagOption = Annotated[
    str, typer.Option("--image-tag", help="Tag of the training image in the stack's ECR repository.")
]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _short(path: str) -> str:
    from recsys.infra.terraform import repo_root

    p = Path(path)
    return str(p.relative_to(repo_root())) if p.is_relative_to(repo_root()) else path


def package_cmd(function: FunctionOption = None, json_output: JsonOption = False) -> None:
    """Build the Lambda zips under build/lambda/ and the training image context under build/training/.

    Dependencies are installed for manylinux2014 x86_64 / CPython 3.11 (pip cache in build/pip-cache);
    each zip is checked against Lambda's 250 MB unzipped limit; two builds give the same sha256.

    **Examples**

        recsys package

        recsys package --function api --json
    """
    from recsys.infra.package import package, package_steps

    with progress_bar("Building packages", package_steps(function), unit="packages") as update:
        result = package(function, on_progress=update)
    for skipped in result["skipped"]:
        info(f"Skipped {skipped['function']}: {skipped['reason']}")
    if result["training_context"]:
        info(f"Training image context: {result['training_context']}")

    def human() -> None:
        rows = [
            (
                z["function"],
                _short(z["path"]),
                _mb(z["zipped_bytes"]),
                _mb(z["unzipped_bytes"]),
                z["sha256"][:16],
            )
            for z in result["zips"]
        ]
        table("Lambda packages", ["function", "zip", "zipped", "unzipped", "sha256"], rows)

    emit(result, human)


def _plan_variables(env: str, image_tag: str) -> dict[str, str]:
    from recsys.infra.package import package_dir

    return {"package_dir": str(package_dir(settings_for(env, resolve_names=False).package_dir)),
            "training_image_tag": image_tag}  # fmt: skip


def _runner(env: str):
    from recsys.infra.terraform import TerraformRunner, check_credentials, environment_dir

    settings = settings_for(env, resolve_names=False)
    environment_dir(env, settings.terraform_dir)  # an unknown or local env fails before anything else
    runner = TerraformRunner.for_settings(settings)
    check_credentials()
    return runner


def _show_summary(env: str, summary: Any, destroy: bool = False) -> None:
    verb = "Destroy plan" if destroy else "Plan"
    info(f"{verb} for {env}: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy.")


def _plan(env: str, image_tag: str, destroy: bool = False, targets: list[str] | None = None):
    runner = _runner(env)
    with progress(f"terraform init ({env})…"):
        runner.init()
    with progress(f"terraform plan ({env})…"):
        summary = runner.plan(_plan_variables(env, image_tag), destroy=destroy, targets=targets)
    _show_summary(env, summary, destroy)
    return runner, summary


def plan_cmd(
    env: EnvOption,
    image_tag: ImageTagOption = "latest",
    target: TargetOption = None,
    json_output: JsonOption = False,
) -> None:
    """Init the environment's S3 backend and plan to a file; print what would be added, changed, destroyed.

    **Examples**

        recsys plan --env dev

        RECSYS_TF_STATE_BUCKET=my-tf-state recsys plan --env staging --json
    """
    _, summary = _plan(env, image_tag, targets=target)
    emit({"env": env, **summary.to_dict()}, lambda: None)


def _confirm(question: str, auto_approve: bool) -> None:
    if auto_approve:
        return
    if not typer.confirm(question, default=False, err=True):
        raise RecsysError(
            "cancelled: nothing was applied", hint="pass --auto-approve to apply without asking"
        )


def _refresh_outputs(env: str, runner: Any) -> dict[str, Any]:
    from recsys.infra.outputs import save_outputs

    values = runner.output()
    save_outputs(env, values, settings_for(env, resolve_names=False))
    return values


def deploy_cmd(
    env: EnvOption,
    auto_approve: AutoApproveOption = False,
    image_tag: ImageTagOption = "latest",
    target: TargetOption = None,
    json_output: JsonOption = False,
) -> None:
    """Plan the environment to a file, show the summary, and apply that plan after confirmation.

    Build the packages first (`recsys package`) and push the training image to TrainingRepositoryUrl.

    **Examples**

        recsys deploy --env dev

        recsys deploy --env prod --auto-approve --image-tag 2026-11-24 --json

        recsys deploy --env dev --target module.compute.aws_ecr_repository.training
    """
    from recsys.infra.package import missing_zips

    missing = missing_zips(settings_for(env, resolve_names=False).package_dir)
    if missing:
        raise RecsysError(
            f"Lambda packages missing: {', '.join(missing)}",
            hint="run `recsys package` first (it writes build/lambda/<function>.zip)",
            code=ErrorCode.NOT_FOUND,
        )
    runner, summary = _plan(env, image_tag, targets=target)
    applied = False
    if summary.has_changes:
        _confirm(f"Apply this plan to {env}?", auto_approve)
        with progress(f"terraform apply ({env})…"):
            runner.apply(Path(summary.plan_file))
        applied = True
        info(f"Applied to {env}.")
    else:
        info(f"{env} is up to date.")
    values = _refresh_outputs(env, runner)
    emit(
        {"env": env, "applied": applied, "plan": summary.to_dict(), "outputs": values},
        lambda: _outputs_table(env, values),
    )


def destroy_cmd(
    env: EnvOption,
    auto_approve: AutoApproveOption = False,
    force: Annotated[bool, typer.Option("--force", help="Required to destroy prod.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Plan the destruction of an environment and apply it after confirmation (prod also needs --force).

    Prod's buckets and tables are retained by design (prevent_destroy, deletion protection); see docs/terraform.md.

    **Examples**

        recsys destroy --env dev

        recsys destroy --env staging --auto-approve
    """
    if env == "prod" and not force:
        raise RecsysError(
            "refusing to destroy prod without --force",
            hint="prod retains its data by design; pass --force only if you really mean it",
            code=ErrorCode.USAGE,
        )
    runner, summary = _plan(env, "latest", destroy=True)
    if summary.has_changes:
        _confirm(f"Destroy {summary.destroy} resources of {env}?", auto_approve)
        with progress(f"terraform apply -destroy ({env})…"):
            runner.apply(Path(summary.plan_file))
        info(f"Destroyed {env}.")
    emit({"env": env, "destroyed": summary.has_changes, "plan": summary.to_dict()}, lambda: None)


def _outputs_table(env: str, values: dict[str, Any]) -> None:
    rows = [
        (name, "" if value is None else value)
        for name, value in sorted(values.items())
        if not isinstance(value, dict)
    ]
    table(f"Outputs of {env}", ["output", "value"], rows)


def outputs_cmd(
    env: EnvOption,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Read from terraform instead of the local cache.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Print the deployed stack's outputs (ApiUrl, bucket and table names, ARNs), cached after the first read.

    **Examples**

        recsys outputs --env dev

        recsys outputs --env prod --json | jq -r .data.ApiUrl
    """
    from recsys.infra.outputs import outputs

    values = outputs(env, settings_for(env, resolve_names=False), refresh=refresh)
    emit(values, lambda: _outputs_table(env, values))
