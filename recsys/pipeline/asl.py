"""A small, faithful interpreter for the subset of Amazon States Language the pipeline uses.

States: Task, Parallel (branches on threads), Choice, Pass, Wait, Succeed, Fail. Fields: InputPath,
Parameters, ResultSelector, ResultPath, OutputPath, Retry (ErrorEquals, IntervalSeconds, MaxAttempts,
BackoffRate, MaxDelaySeconds), Catch (ErrorEquals, ResultPath, Next), Fail's Error/Cause/ErrorPath/CausePath.
Error names follow Step Functions: `States.ALL` matches every error except `States.Runtime`;
`States.TaskFailed` matches every error except `States.Timeout` and `States.Runtime`.

The interpreter knows nothing about Lambda: a `TaskInvoker(resource, parameters)` runs each Task and
raises `StatesError` for a failed task. Sleep and clock are injectable, so tests never wait.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsys.pipeline.jsonpath import (
    PathError,
    apply_template,
    evaluate_expression,
    get_path,
    has_path,
    set_path,
)

STATE_TYPES = ("Task", "Parallel", "Choice", "Pass", "Wait", "Succeed", "Fail")
TERMINAL_TYPES = ("Succeed", "Fail")
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


def validate_definition(definition: dict[str, Any]) -> list[str]:
    """Structural problems of an ASL document (empty when it is sound)."""
    problems: list[str] = []
    _validate_machine(definition, "", problems)
    return problems


def _validate_machine(machine: Any, where: str, problems: list[str]) -> None:
    if not isinstance(machine, dict):
        problems.append(f"{where or 'definition'}: not an object")
        return
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
        if kind not in STATE_TYPES:
            problems.append(f"{here}: unsupported Type {kind!r}")
            continue
        targets: list[str] = []
        if kind == "Choice":
            for i, rule in enumerate(state.get("Choices") or []):
                if "Next" not in rule:
                    problems.append(f"{here}: choice {i} has no Next")
                else:
                    targets.append(rule["Next"])
            if not state.get("Choices"):
                problems.append(f"{here}: Choice needs Choices")
            if "Default" in state:
                targets.append(state["Default"])
        elif kind not in TERMINAL_TYPES:
            has_next, has_end = "Next" in state, bool(state.get("End"))
            if has_next == has_end:
                problems.append(f"{here}: needs exactly one of Next or End")
            if has_next:
                targets.append(state["Next"])
        for catcher in state.get("Catch") or []:
            targets.append(catcher.get("Next"))
        for retrier_list in ("Retry", "Catch"):
            rules = state.get(retrier_list) or []
            for i, rule in enumerate(rules):
                errors = rule.get("ErrorEquals")
                if not errors:
                    problems.append(f"{here}: {retrier_list}[{i}] needs ErrorEquals")
                elif "States.ALL" in errors and (len(errors) != 1 or i != len(rules) - 1):
                    problems.append(f"{here}: States.ALL must be alone and in the last {retrier_list} rule")
        for target in targets:
            if target not in states:
                problems.append(f"{here}: transition to unknown state {target!r}")
        if kind == "Task" and not isinstance(state.get("Resource"), str):
            problems.append(f"{here}: Task needs a Resource")
        if kind == "Parallel":
            branches = state.get("Branches")
            if not isinstance(branches, list) or not branches:
                problems.append(f"{here}: Parallel needs Branches")
            else:
                for i, branch in enumerate(branches):
                    _validate_machine(branch, f"{here}/{i}/", problems)


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
            raise ValueError("invalid state machine definition: " + "; ".join(problems))
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
                    raise _fail("States.Runtime", f"more than {MAX_TRANSITIONS} state transitions", name)
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
                raise _fail(error, cause, name)
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
            raise _fail("States.Runtime", f"state {name!r}: {exc}", name) from None
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
                    raise _fail("States.Runtime", f"state {name!r}: {exc}", name) from None
            except StatesError as exc:
                if exc.error == "States.Runtime":
                    raise
                retry = self._match_retrier(state.get("Retry") or [], exc.error)
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
                catcher = self._match_catcher(state.get("Catch") or [], exc.error)
                if catcher is None:
                    if exc.state is None:
                        exc.state = name
                    raise
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
                    raise _fail("States.Runtime", f"state {name!r}: {perr}", name) from None
                return output, catcher["Next"], exc.error

    @staticmethod
    def _matches(errors: list[str], error: str) -> bool:
        if error == "States.Runtime":
            return False
        if "States.ALL" in errors or error in errors:
            return True
        return "States.TaskFailed" in errors and error != "States.Timeout"

    def _match_retrier(self, rules: list[dict[str, Any]], error: str) -> tuple[int, dict[str, Any]] | None:
        for i, rule in enumerate(rules):
            if self._matches(rule.get("ErrorEquals", []), error):
                return i, rule
        return None

    def _match_catcher(self, rules: list[dict[str, Any]], error: str) -> dict[str, Any] | None:
        for rule in rules:
            if self._matches(rule.get("ErrorEquals", []), error):
                return rule
        return None

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
        if "Parameters" in state and state["Type"] in ("Task", "Parallel", "Pass"):
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

    def _wait_seconds(self, state: dict[str, Any], data: Any, ctx: dict[str, Any]) -> float:
        if "Seconds" in state:
            return float(state["Seconds"])
        if "SecondsPath" in state:
            return float(get_path(data, state["SecondsPath"], ctx))
        raise PathError("Wait supports Seconds and SecondsPath")

    def _choose(self, name: str, state: dict[str, Any], data: Any) -> str:
        for rule in state["Choices"]:
            if _evaluate_rule(rule, data, self.context):
                return rule["Next"]
        if "Default" in state:
            return state["Default"]
        raise _fail(
            "States.NoChoiceMatched", f"no choice rule of {name!r} matched and there is no Default", name
        )


def _next(state: dict[str, Any]) -> str | None:
    return None if state.get("End") else state["Next"]


def _fail(error: str, cause: str, state: str) -> StatesError:
    return StatesError(error, cause, state)


# ----- Choice rules

_COMPARISONS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool]]] = {}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


for _prefix, _check in (
    ("String", lambda v: isinstance(v, str)),
    ("Numeric", _is_number),
    ("Timestamp", lambda v: isinstance(v, str)),  # ISO-8601 UTC strings compare in time order
):
    _COMPARISONS[f"{_prefix}Equals"] = (_check, lambda a, b: a == b)
    _COMPARISONS[f"{_prefix}LessThan"] = (_check, lambda a, b: a < b)
    _COMPARISONS[f"{_prefix}GreaterThan"] = (_check, lambda a, b: a > b)
    _COMPARISONS[f"{_prefix}LessThanEquals"] = (_check, lambda a, b: a <= b)
    _COMPARISONS[f"{_prefix}GreaterThanEquals"] = (_check, lambda a, b: a >= b)
_COMPARISONS["BooleanEquals"] = (lambda v: isinstance(v, bool), lambda a, b: a == b)


def _glob(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if pattern[i] == "*" else re.escape(pattern[i])
        i += 1
    return re.compile(out + r"\Z", re.DOTALL)


def _evaluate_rule(rule: dict[str, Any], data: Any, context: Any) -> bool:
    if "And" in rule:
        return all(_evaluate_rule(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_evaluate_rule(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _evaluate_rule(rule["Not"], data, context)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise PathError("a choice rule needs Variable (or And/Or/Not)")
    if "IsPresent" in rule:
        return has_path(data, variable) == bool(rule["IsPresent"])
    value = get_path(data, variable, context)
    for test, check in (
        ("IsNull", lambda v: v is None),
        ("IsString", lambda v: isinstance(v, str)),
        ("IsNumeric", _is_number),
        ("IsBoolean", lambda v: isinstance(v, bool)),
    ):
        if test in rule:
            return check(value) == bool(rule[test])
    if "StringMatches" in rule:
        return isinstance(value, str) and bool(_glob(rule["StringMatches"]).match(value))
    for op, (type_ok, compare) in _COMPARISONS.items():
        for key, from_path in ((op, False), (op + "Path", True)):
            if key in rule:
                other = get_path(data, rule[key], context) if from_path else rule[key]
                return type_ok(value) and type_ok(other) and compare(value, other)
    raise PathError(f"unsupported choice rule {sorted(rule)}")
