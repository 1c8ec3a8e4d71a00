"""A small interpreter for the subset of Amazon States Language the pipeline uses, checked against moto's.

States: Task, Parallel (branches on threads), Choice, Pass, Wait (Seconds, SecondsPath), Succeed, Fail.
Fields: InputPath, Parameters, ResultSelector, ResultPath, OutputPath, Retry (ErrorEquals, IntervalSeconds,
MaxAttempts, BackoffRate, MaxDelaySeconds), Catch (ErrorEquals, ResultPath, Next), Fail's
Error/Cause/ErrorPath/CausePath. Choice: And/Or/Not, IsPresent/IsNull, and String/Numeric comparisons
(Equals, LessThan, GreaterThan, LessThanEquals, GreaterThanEquals) and BooleanEquals, each with its `Path`
form. Paths and intrinsics: `recsys.pipeline.jsonpath`. Anything else (Map, Timestamp comparisons,
StringMatches, TimeoutSeconds, ...) is rejected when the definition is loaded, naming the state and field.
Error names follow Step Functions: `States.ALL` matches every error except `States.Runtime`;
`States.TaskFailed` matches every error except `States.Timeout` and `States.Runtime`.

The interpreter knows nothing about Lambda: a `TaskInvoker(resource, parameters)` runs each Task and
raises `StatesError` for a failed task. Sleep is injectable, so tests never wait.
"""

from __future__ import annotations

import copy
import operator
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsys.errors import ValidationError
from recsys.pipeline.jsonpath import (
    PathError,
    apply_template,
    evaluate_expression,
    get_path,
    has_path,
    parse_expression,
    parse_path,
    set_path,
    template_expressions,
)

MAX_TRANSITIONS = 5000

TaskInvoker = Callable[[str, Any], Any]
Listener = Callable[["ExecutionEvent"], None]


class StatesError(Exception):
    """A failure with a Step Functions error name (`States.TaskFailed`, `ValueError`, ...) and a cause."""

    def __init__(self, error: str, cause: str = "", state: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause
        self.state = state  # the state where the error arose (set by the interpreter)


class _Aborted(Exception):
    """A branch stopped because a sibling branch of its Parallel state failed."""


@dataclass
class ExecutionEvent:
    """One entry of the execution history."""

    type: str  # ExecutionStarted, StateEntered, StateExited, TaskFailed, StateRetry, ErrorCaught, ...
    state: str | None = None
    path: str = ""  # where the state lives: "" at the top, "TrainAndExport/0" inside a branch
    timestamp: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "state": self.state,
            "path": self.path,
            "timestamp": datetime.fromtimestamp(self.timestamp, tz=UTC).isoformat(),
            **self.details,
        }


@dataclass
class ExecutionOutcome:
    """How an execution ended: SUCCEEDED with an output, or FAILED with error, cause and the failed state."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    failed_state: str | None = None


# ----- validation

_FLOW = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath"}
_RESULT = {"Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"}
FIELDS: dict[str, set[str]] = {
    "Task": _FLOW | _RESULT | {"Resource"},
    "Parallel": _FLOW | _RESULT | {"Branches"},
    "Pass": _FLOW | {"Parameters", "Result", "ResultPath"},
    "Wait": _FLOW | {"Seconds", "SecondsPath"},
    "Choice": {"Type", "Comment", "InputPath", "OutputPath", "Choices", "Default"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
}
RULE_FIELDS = {
    "Retry": {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"},
    "Catch": {"ErrorEquals", "ResultPath", "Next"},
}
MACHINE_FIELDS = {"StartAt", "States", "Comment", "Version"}


class DefinitionError(ValidationError, ValueError):
    """A definition the interpreter cannot run: each problem names the state and the field or feature."""


def validate_definition(definition: dict[str, Any]) -> list[str]:
    """What is wrong with an ASL document or unsupported by this interpreter (empty when it can run it)."""
    problems: list[str] = []
    _validate_machine(definition, "", problems)
    return problems


def _validate_machine(machine: Any, where: str, problems: list[str]) -> None:
    if not isinstance(machine, dict):
        problems.append(f"{where or 'definition'}: not an object")
        return
    for key in sorted(set(machine) - MACHINE_FIELDS):
        problems.append(f"{where or 'definition'}: unsupported field {key}")
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        problems.append(f"{where or 'definition'}: States must be a non-empty object")
        return
    if machine.get("StartAt") not in states:
        problems.append(f"{where or 'definition'}: StartAt {machine.get('StartAt')!r} is not a state")
    for name, state in states.items():
        here = f"{where}{name}"
        if not isinstance(state, dict):
            problems.append(f"{here}: not an object")
            continue
        kind = state.get("Type")
        if kind not in FIELDS:
            problems.append(f"{here}: unsupported Type {kind!r} (supported: {', '.join(FIELDS)})")
            continue
        for key in sorted(set(state) - FIELDS[kind]):
            problems.append(f"{here}: unsupported {kind} field {key}")
        targets = _validate_state(here, kind, state, problems)
        for target in targets:
            if target not in states:
                problems.append(f"{here}: transition to unknown state {target!r}")


def _validate_state(here: str, kind: str, state: dict[str, Any], problems: list[str]) -> list[Any]:
    """Check one state's fields; returns the states it can go to."""
    targets: list[Any] = []
    if kind == "Choice":
        if not isinstance(state.get("Choices"), list) or not state["Choices"]:
            problems.append(f"{here}: Choice needs Choices")
        for i, rule in enumerate(state.get("Choices") or []):
            _validate_rule(rule, f"{here}: choice {i}", True, problems)
            targets.append(rule.get("Next") if isinstance(rule, dict) else None)
        targets.extend([state["Default"]] if "Default" in state else [])
    elif kind not in ("Succeed", "Fail"):
        if ("Next" in state) == bool(state.get("End")):
            problems.append(f"{here}: needs exactly one of Next or End")
        targets.extend([state["Next"]] if "Next" in state else [])
    if kind == "Task" and not isinstance(state.get("Resource"), str):
        problems.append(f"{here}: Task needs a Resource")
    if kind == "Wait" and ("Seconds" in state) == ("SecondsPath" in state):
        problems.append(f"{here}: Wait needs exactly one of Seconds or SecondsPath")
    for key in ("InputPath", "OutputPath", "ResultPath", "SecondsPath"):
        if state.get(key) is not None:
            _check(problems, here, key, parse_path, state[key])
    for key in ("ErrorPath", "CausePath"):
        if key in state:
            _check(problems, here, key, parse_expression, state[key])
    for key in ("Parameters", "ResultSelector"):
        for field_name, expr in template_expressions(state.get(key)):
            _check(problems, here, f"{key} {field_name}", parse_expression, expr)
    for list_name, allowed in RULE_FIELDS.items():
        rules = state.get(list_name) or []
        for i, rule in enumerate(rules):
            errors = rule.get("ErrorEquals")
            for key in sorted(set(rule) - allowed):
                problems.append(f"{here}: unsupported {list_name}[{i}] field {key}")
            if not errors:
                problems.append(f"{here}: {list_name}[{i}] needs ErrorEquals")
            elif "States.ALL" in errors and (len(errors) != 1 or i != len(rules) - 1):
                problems.append(f"{here}: States.ALL must be alone and in the last {list_name} rule")
            if list_name == "Catch":
                targets.append(rule.get("Next"))
                if rule.get("ResultPath") is not None:
                    _check(problems, here, f"Catch[{i}] ResultPath", parse_path, rule["ResultPath"])
    if kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            problems.append(f"{here}: Parallel needs Branches")
        else:
            for i, branch in enumerate(branches):
                _validate_machine(branch, f"{here}/{i}/", problems)
    return targets


def _check(problems: list[str], here: str, what: str, parse: Callable[[Any], Any], value: Any) -> None:
    try:
        parse(value)
    except PathError as exc:
        problems.append(f"{here}: {what}: {exc}")


def _validate_rule(rule: Any, here: str, top: bool, problems: list[str]) -> None:
    if not isinstance(rule, dict):
        problems.append(f"{here}: a choice rule must be an object")
        return
    if top and "Next" not in rule:
        problems.append(f"{here}: has no Next")
    if not top and "Next" in rule:
        problems.append(f"{here}: Next is only allowed in a top-level choice rule")
    keys = set(rule) - {"Next", "Comment"}
    combinators = keys & {"And", "Or", "Not"}
    if combinators:
        if len(keys) != 1:
            problems.append(f"{here}: {sorted(combinators)[0]} cannot be combined with {sorted(keys)}")
            return
        op = keys.pop()
        nested = [rule[op]] if op == "Not" else rule[op]
        if not isinstance(nested, list) or not nested:
            problems.append(f"{here}: {op} needs a non-empty list of rules")
            return
        for sub in nested:
            _validate_rule(sub, f"{here} {op}", False, problems)
        return
    if "Variable" not in rule:
        problems.append(f"{here}: a choice rule needs Variable (or And/Or/Not)")
    else:
        _check(problems, here, "Variable", parse_path, rule["Variable"])
    tests = sorted(keys - {"Variable"})
    if len(tests) != 1:
        problems.append(f"{here}: a choice rule needs exactly one comparison, not {tests}")
        return
    op = tests[0]
    if op in ("IsPresent", "IsNull"):
        if not isinstance(rule[op], bool):
            problems.append(f"{here}: {op} takes true or false")
    elif op in COMPARISONS:
        if not COMPARISONS[op][0](rule[op]):
            problems.append(f"{here}: {op} does not take {rule[op]!r}")
    elif op.endswith("Path") and op[:-4] in COMPARISONS:
        _check(problems, here, op, parse_path, rule[op])
    else:
        supported = ", ".join([*COMPARISONS, "IsPresent", "IsNull"])
        problems.append(
            f"{here}: unsupported Choice operator {op} (supported: {supported} and their Path forms)"
        )


# ----- execution


class StateMachine:
    """Executes one ASL definition; `execute()` may be called many times (each call is one execution)."""

    def __init__(
        self,
        definition: dict[str, Any],
        invoke: TaskInvoker,
        *,
        name: str = "state-machine",
        sleep: Callable[[float], None] = time.sleep,
        listener: Listener | None = None,
        max_workers: int = 4,
    ) -> None:
        problems = validate_definition(definition)
        if problems:
            raise DefinitionError(
                "invalid state machine definition: " + "; ".join(problems),
                hint="the local interpreter runs the subset of ASL described in docs/pipeline.md",
            )
        self.definition = definition
        self.name = name
        self._invoke = invoke
        self._sleep = sleep
        self._listener = listener
        self._max_workers = max_workers
        self._lock = threading.Lock()

    def _emit(self, event: ExecutionEvent) -> None:
        if self._listener is not None:
            with self._lock:
                self._listener(event)

    def execute(self, execution_input: Any, execution_id: str | None = None) -> ExecutionOutcome:
        """Run the machine on `execution_input` until it succeeds or fails."""
        execution_id = execution_id or uuid.uuid4().hex
        context = {
            "Execution": {
                "Id": execution_id,
                "Name": execution_id,
                "Input": copy.deepcopy(execution_input),
                "StartTime": datetime.now(UTC).isoformat(),
            },
            "StateMachine": {"Id": self.name, "Name": self.name},
        }
        self._emit(ExecutionEvent("ExecutionStarted", details={"input": execution_input}))
        run = _Run(self, context, threading.Event(), [0])
        try:
            output = run.machine(self.definition, copy.deepcopy(execution_input), "")
        except StatesError as exc:
            failed = exc.state
            self._emit(
                ExecutionEvent("ExecutionFailed", failed, details={"error": exc.error, "cause": exc.cause})
            )
            return ExecutionOutcome("FAILED", error=exc.error, cause=exc.cause, failed_state=failed)
        self._emit(ExecutionEvent("ExecutionSucceeded", details={"output": output}))
        return ExecutionOutcome("SUCCEEDED", output=output)


@dataclass
class _Run:
    """The mutable state of one execution (shared by its branches)."""

    sm: StateMachine
    context: dict[str, Any]
    cancel: threading.Event
    transitions: list[int]

    def machine(self, machine: dict[str, Any], data: Any, path: str) -> Any:
        """Run a (sub-)machine from StartAt to a terminal state; returns its output."""
        states = machine["States"]
        name = machine["StartAt"]
        while True:
            if self.cancel.is_set():
                raise _Aborted()
            with self.sm._lock:
                self.transitions[0] += 1
                if self.transitions[0] > MAX_TRANSITIONS:
                    raise StatesError(
                        "States.Runtime", f"more than {MAX_TRANSITIONS} state transitions", name
                    )
            state = states[name]
            self.sm._emit(ExecutionEvent("StateEntered", name, path, details={"input": data}))
            started = time.monotonic()
            try:
                output, next_name, caught = self.state(name, state, data, path)
            except StatesError as exc:
                if exc.state is None:
                    exc.state = name
                raise
            details = {"output": output, "duration_s": round(time.monotonic() - started, 3)}
            if caught is not None:
                details["caught_error"] = caught
            self.sm._emit(ExecutionEvent("StateExited", name, path, details=details))
            if next_name is None:
                return output
            data, name = output, next_name

    def state(
        self, name: str, state: dict[str, Any], raw: Any, path: str
    ) -> tuple[Any, str | None, str | None]:
        """Run one state; returns (output, next state or None at the end, the error a Catch handled or None)."""
        kind = state["Type"]
        ctx = {**self.context, "State": {"Name": name, "EnteredTime": datetime.now(UTC).isoformat()}}
        try:
            if kind == "Fail":
                error = state.get("Error", "States.Fail")
                cause = state.get("Cause", "")
                if "ErrorPath" in state:
                    error = str(evaluate_expression(state["ErrorPath"], raw, ctx))
                if "CausePath" in state:
                    cause = str(evaluate_expression(state["CausePath"], raw, ctx))
                raise StatesError(error, cause, name)
            effective = self._input(state, raw, ctx)
            if kind == "Succeed":
                return self._output(state, effective, ctx), None, None
            if kind == "Choice":
                return self._output(state, effective, ctx), self._choose(name, state, effective), None
            if kind == "Wait":
                self.sm._sleep(self._wait_seconds(state, effective, ctx))
                return self._output(state, effective, ctx), _next(state), None
            if kind == "Pass":
                result = copy.deepcopy(state["Result"]) if "Result" in state else effective
                return self._finish(state, raw, result, ctx), _next(state), None
        except PathError as exc:
            raise StatesError("States.Runtime", f"state {name!r}: {exc}", name) from None
        return self._with_retry(name, state, raw, ctx, path)

    def _with_retry(
        self, name: str, state: dict[str, Any], raw: Any, ctx: dict[str, Any], path: str
    ) -> tuple[Any, str | None, str | None]:
        attempts = [0] * len(state.get("Retry") or [])
        while True:
            try:
                try:
                    effective = self._input(state, raw, ctx)
                    if state["Type"] == "Task":
                        result = self._task(name, state, effective, path)
                    else:
                        result = self._parallel(name, state, effective, path)
                    return self._finish(state, raw, result, ctx, selector=True), _next(state), None
                except PathError as exc:
                    raise StatesError("States.Runtime", f"state {name!r}: {exc}", name) from None
            except StatesError as exc:
                if exc.error == "States.Runtime":
                    raise
                retry = self._first_match(state.get("Retry") or [], exc.error)
                if retry is not None:
                    index, rule = retry
                    max_attempts = int(rule.get("MaxAttempts", 3))
                    if attempts[index] < max_attempts:
                        interval = float(rule.get("IntervalSeconds", 1))
                        delay = interval * float(rule.get("BackoffRate", 2.0)) ** attempts[index]
                        if "MaxDelaySeconds" in rule:
                            delay = min(delay, float(rule["MaxDelaySeconds"]))
                        attempts[index] += 1
                        self.sm._emit(
                            ExecutionEvent(
                                "StateRetry",
                                name,
                                path,
                                details={
                                    "error": exc.error,
                                    "cause": exc.cause,
                                    "attempt": attempts[index],
                                    "delay_s": delay,
                                },
                            )
                        )
                        self.sm._sleep(delay)
                        ctx = {**ctx, "State": {**ctx["State"], "RetryCount": sum(attempts)}}
                        continue
                caught = self._first_match(state.get("Catch") or [], exc.error)
                if caught is None:
                    if exc.state is None:
                        exc.state = name
                    raise
                catcher = caught[1]
                self.sm._emit(
                    ExecutionEvent(
                        "ErrorCaught",
                        name,
                        path,
                        details={"error": exc.error, "cause": exc.cause, "next": catcher["Next"]},
                    )
                )
                error_output = {"Error": exc.error, "Cause": exc.cause}
                result_path = catcher.get("ResultPath", "$")
                try:
                    output = raw if result_path is None else set_path(raw, result_path, error_output)
                except PathError as perr:
                    raise StatesError("States.Runtime", f"state {name!r}: {perr}", name) from None
                return output, catcher["Next"], exc.error

    @staticmethod
    def _matches(errors: list[str], error: str) -> bool:
        if error == "States.Runtime":
            return False
        if "States.ALL" in errors or error in errors:
            return True
        return "States.TaskFailed" in errors and error != "States.Timeout"

    def _first_match(self, rules: list[dict[str, Any]], error: str) -> tuple[int, dict[str, Any]] | None:
        """The first Retry or Catch rule whose ErrorEquals matches `error`, with its index."""
        return next(((i, r) for i, r in enumerate(rules) if self._matches(r["ErrorEquals"], error)), None)

    def _task(self, name: str, state: dict[str, Any], effective: Any, path: str) -> Any:
        self.sm._emit(ExecutionEvent("TaskScheduled", name, path, details={"resource": state["Resource"]}))
        try:
            result = self.sm._invoke(state["Resource"], effective)
        except StatesError as exc:
            self.sm._emit(
                ExecutionEvent("TaskFailed", name, path, details={"error": exc.error, "cause": exc.cause})
            )
            raise
        except Exception as exc:  # an invoker bug is still a task failure, named after the exception
            self.sm._emit(
                ExecutionEvent(
                    "TaskFailed", name, path, details={"error": type(exc).__name__, "cause": str(exc)}
                )
            )
            raise StatesError(type(exc).__name__, str(exc)) from exc
        self.sm._emit(ExecutionEvent("TaskSucceeded", name, path))
        return result

    def _parallel(self, name: str, state: dict[str, Any], effective: Any, path: str) -> list[Any]:
        branches = state["Branches"]
        cancel = threading.Event()
        child = _Run(self.sm, self.context, cancel, self.transitions)
        errors: list[tuple[int, StatesError]] = []

        def run_branch(index: int) -> Any:
            try:
                return child.machine(branches[index], copy.deepcopy(effective), f"{path}{name}/{index}/")
            except StatesError as exc:
                with self.sm._lock:
                    errors.append((index, exc))
                cancel.set()
                raise
            except _Aborted:
                return None

        workers = max(1, min(self.sm._max_workers, len(branches)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"asl-{name}") as pool:
            futures = [pool.submit(run_branch, i) for i in range(len(branches))]
            results = []
            for future in futures:
                try:
                    results.append(future.result())
                except StatesError:
                    results.append(None)
        if self.cancel.is_set():
            raise _Aborted()
        if errors:
            first = errors[0][1]  # the first branch to fail decides the Parallel state's error
            raise StatesError(first.error, first.cause, first.state)
        return results

    def _input(self, state: dict[str, Any], raw: Any, ctx: dict[str, Any]) -> Any:
        data = raw
        if "InputPath" in state:
            data = {} if state["InputPath"] is None else get_path(raw, state["InputPath"], ctx)
        if "Parameters" in state:
            data = apply_template(state["Parameters"], data, ctx)
        return data

    def _finish(
        self, state: dict[str, Any], raw: Any, result: Any, ctx: dict[str, Any], selector: bool = False
    ) -> Any:
        if selector and "ResultSelector" in state:
            result = apply_template(state["ResultSelector"], result, ctx)
        result_path = state.get("ResultPath", "$")
        output = raw if result_path is None else set_path(raw, result_path, result)
        return self._output(state, output, ctx)

    @staticmethod
    def _output(state: dict[str, Any], data: Any, ctx: dict[str, Any]) -> Any:
        if "OutputPath" not in state:
            return data
        if state["OutputPath"] is None:
            return {}
        return get_path(data, state["OutputPath"], ctx)

    @staticmethod
    def _wait_seconds(state: dict[str, Any], data: Any, ctx: dict[str, Any]) -> float:
        if "Seconds" in state:
            return float(state["Seconds"])
        return float(get_path(data, state["SecondsPath"], ctx))

    def _choose(self, name: str, state: dict[str, Any], data: Any) -> str:
        for rule in state["Choices"]:
            if _evaluate_rule(rule, data, self.context):
                return rule["Next"]
        if "Default" in state:
            return state["Default"]
        raise StatesError(
            "States.NoChoiceMatched", f"no choice rule of {name!r} matched and there is no Default", name
        )


def _next(state: dict[str, Any]) -> str | None:
    return None if state.get("End") else state["Next"]


# ----- Choice rules


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_KINDS: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "Numeric": _is_number,
    "Boolean": lambda v: isinstance(v, bool),
}
_ORDERS = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}
# StringEquals, NumericLessThan, BooleanEquals, ...: (type check of both sides, comparison). Each has a
# `...Path` form whose right-hand side is read from the data.
COMPARISONS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool]]] = {
    kind + order: (check, compare)
    for kind, check in _KINDS.items()
    for order, compare in _ORDERS.items()
    if kind != "Boolean" or order == "Equals"
}


def _evaluate_rule(rule: dict[str, Any], data: Any, context: Any) -> bool:
    """A validated choice rule against the state's input (a missing Variable is a PathError)."""
    if "And" in rule:
        return all(_evaluate_rule(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_evaluate_rule(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _evaluate_rule(rule["Not"], data, context)
    variable = rule["Variable"]
    if "IsPresent" in rule:
        return has_path(data, variable, context) == rule["IsPresent"]
    value = get_path(data, variable, context)
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    op = next(k for k in rule if k not in ("Variable", "Next", "Comment"))
    other = rule[op]
    if op not in COMPARISONS:
        op, other = op[: -len("Path")], get_path(data, other, context)
    check, compare = COMPARISONS[op]
    return check(value) and check(other) and compare(value, other)
