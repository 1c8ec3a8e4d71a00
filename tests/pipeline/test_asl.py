"""The ASL interpreter: data passing, parallel, choice, retry, catch, fail (stand-in tasks, no AWS)."""

from __future__ import annotations

import threading

import pytest

from recsys.pipeline.asl import StateMachine, StatesError, validate_definition
from recsys.pipeline.jsonpath import PathError, evaluate_expression, get_path, set_path

LAMBDA = "arn:aws:states:::lambda:invoke"


def lambda_invoker(functions):
    """A task invoker like the runner's: lambda:invoke -> {"Payload": fn(payload), "StatusCode": 200}."""
    calls = []

    def invoke(resource, params):
        assert resource == LAMBDA
        calls.append((params["FunctionName"], params["Payload"]))
        return {"Payload": functions[params["FunctionName"]](params["Payload"]), "StatusCode": 200}

    invoke.calls = calls
    return invoke


def task(fn, **extra):
    return {"Type": "Task", "Resource": LAMBDA, "Parameters": {"FunctionName": fn, "Payload.$": "$"}, **extra}


def test_jsonpath_get_set_and_intrinsics():
    data = {"a": {"b": [1, {"c": "x"}]}, "d e": 2}
    assert get_path(data, "$.a.b[1].c") == "x"
    assert get_path(data, "$['d e']") == 2
    assert set_path(data, "$.a.new.deep", 5)["a"]["new"] == {"deep": 5}
    assert "new" not in data["a"]  # set_path copies
    assert evaluate_expression("States.Format('v={} n={}', $.a.b[1].c, $['d e'])", data) == "v=x n=2"
    assert evaluate_expression("States.JsonMerge($.a, States.StringToJson('{\"z\": 1}'), false)", data) == {
        "b": [1, {"c": "x"}],
        "z": 1,
    }
    assert evaluate_expression("States.JsonToString($.a.b)", data) == '[1,{"c":"x"}]'
    assert evaluate_expression("$$.Execution.Id", data, {"Execution": {"Id": "e1"}}) == "e1"
    with pytest.raises(PathError):
        get_path(data, "$.missing")
    with pytest.raises(PathError):
        evaluate_expression("States.Nope($)", data)


def test_data_passing_parameters_selector_result_and_output_paths():
    definition = {
        "StartAt": "Add",
        "States": {
            "Add": {
                "Type": "Task",
                "Resource": LAMBDA,
                "InputPath": "$.numbers",
                "Parameters": {"FunctionName": "add", "Payload": {"xs.$": "$", "label": "sum"}},
                "ResultSelector": {"total.$": "$.Payload.total"},
                "ResultPath": "$.result",
                "Next": "Shape",
            },
            "Shape": {
                "Type": "Pass",
                "Parameters": {"answer.$": "$.result.total", "exec.$": "$$.Execution.Id"},
                "OutputPath": "$.answer",
                "End": True,
            },
        },
    }
    invoke = lambda_invoker({"add": lambda p: {"total": sum(p["xs"]), "label": p["label"]}})
    outcome = StateMachine(definition, invoke).execute({"numbers": [1, 2, 3]}, execution_id="x1")
    assert outcome.status == "SUCCEEDED"
    assert outcome.output == 6
    assert invoke.calls == [("add", {"xs": [1, 2, 3], "label": "sum"})]


def test_parallel_runs_branches_and_collects_results_in_order():
    both_running = threading.Barrier(2, timeout=10)

    def slow(name):
        def fn(p):
            both_running.wait()  # proves the branches run concurrently
            return {"name": name, "x": p["x"]}

        return fn

    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": task("a", End=True)}},
                    {
                        "StartAt": "B",
                        "States": {"B": task("b", ResultSelector={"v.$": "$.Payload"}, End=True)},
                    },
                ],
                "ResultSelector": {"first.$": "$[0].Payload.name", "second.$": "$[1].v.name"},
                "ResultPath": "$.out",
                "End": True,
            }
        },
    }
    events = []
    sm = StateMachine(definition, lambda_invoker({"a": slow("a"), "b": slow("b")}), listener=events.append)
    outcome = sm.execute({"x": 1})
    assert outcome.status == "SUCCEEDED"
    assert outcome.output == {"x": 1, "out": {"first": "a", "second": "b"}}
    entered = {(e.state, e.path) for e in events if e.type == "StateEntered"}
    assert {("A", "P/0/"), ("B", "P/1/")} <= entered


def test_choice_routes_on_values_and_default():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.gates.passed", "BooleanEquals": True},
                            {"Variable": "$.score", "NumericGreaterThanEqualsPath": "$.min"},
                        ],
                        "Next": "Yes",
                    },
                    {"Variable": "$.name", "StringEquals": "prefixed", "Next": "Prefix"},
                    {"Not": {"Variable": "$.extra", "IsPresent": True}, "Next": "NoExtra"},
                ],
                "Default": "No",
            },
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "Prefix": {"Type": "Pass", "Result": "prefix", "End": True},
            "NoExtra": {"Type": "Pass", "Result": "no-extra", "End": True},
            "No": {"Type": "Succeed", "OutputPath": "$.name"},
        },
    }
    sm = StateMachine(definition, lambda r, p: None)
    base = {"gates": {"passed": True}, "score": 0.5, "min": 0.4, "name": "x", "extra": 1}
    assert sm.execute(base).output == "yes"
    assert sm.execute({**base, "score": 0.1, "name": "prefixed"}).output == "prefix"
    no_extra = {k: v for k, v in base.items() if k != "extra"}
    assert sm.execute({**no_extra, "score": "high"}).output == "no-extra"  # a string never equals a number
    assert sm.execute({**base, "gates": {"passed": False}}).output == "x"


def test_choice_without_match_or_default_fails():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Done"}]},
            "Done": {"Type": "Succeed"},
        },
    }
    outcome = StateMachine(definition, lambda r, p: None).execute({"v": 2})
    assert (outcome.status, outcome.error, outcome.failed_state) == ("FAILED", "States.NoChoiceMatched", "C")


def test_retry_then_success_with_backoff_and_injected_sleep():
    attempts = {"n": 0}

    def flaky(payload):
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise StatesError("Lambda.ServiceException", "try again")
        return {"ok": True}

    def invoke(resource, params):
        return {"Payload": flaky(params["Payload"])}

    slept = []
    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "flaky",
                Retry=[
                    {"ErrorEquals": ["Other"], "MaxAttempts": 5},
                    {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "BackoffRate": 3.0},
                ],
                OutputPath="$.Payload",
                End=True,
            )
        },
    }
    events = []
    outcome = StateMachine(definition, invoke, sleep=slept.append, listener=events.append).execute({})
    assert outcome.output == {"ok": True}
    assert slept == [2.0, 6.0]
    assert [e.details["attempt"] for e in events if e.type == "StateRetry"] == [1, 2]


def test_retries_exhausted_then_caught_with_result_path():
    def invoke(resource, params):
        raise StatesError("ValueError", '{"errorMessage": "bad"}')

    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "f",
                Retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                Catch=[
                    {"ErrorEquals": ["KeyError"], "Next": "Wrong"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"},
                ],
                End=True,
            ),
            "Wrong": {"Type": "Succeed"},
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    slept = []
    outcome = StateMachine(definition, invoke, sleep=slept.append).execute({"keep": 1})
    assert outcome.status == "SUCCEEDED"
    assert outcome.output == {"keep": 1, "error": {"Error": "ValueError", "Cause": '{"errorMessage": "bad"}'}}
    assert slept == [1.0, 2.0]


def test_fail_state_with_error_and_cause_paths():
    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "f", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "F"}], End=True
            ),
            "F": {
                "Type": "Fail",
                "ErrorPath": "$.error.Error",
                "CausePath": "States.Format('boom: {}', $.error.Cause)",
            },
        },
    }

    def invoke(resource, params):
        raise StatesError("RuntimeError", "disk full")

    outcome = StateMachine(definition, invoke).execute({})
    assert (outcome.status, outcome.error, outcome.cause, outcome.failed_state) == (
        "FAILED",
        "RuntimeError",
        "boom: disk full",
        "F",
    )


def test_failing_branch_fails_the_parallel_and_names_the_inner_state():
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": task("ok", End=True)}},
                    {"StartAt": "Bad", "States": {"Bad": task("bad", End=True)}},
                ],
                "End": True,
            }
        },
    }

    def bad(payload):
        raise StatesError("ZeroDivisionError", "division by zero")

    outcome = StateMachine(definition, lambda_invoker({"ok": lambda p: p, "bad": bad})).execute({})
    assert (outcome.status, outcome.error, outcome.failed_state) == ("FAILED", "ZeroDivisionError", "Bad")


def test_runtime_errors_are_not_caught_by_states_all():
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                **task("f"),
                "InputPath": "$.missing",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Succeed"},
        },
    }
    outcome = StateMachine(definition, lambda r, p: {}).execute({})
    assert outcome.status == "FAILED"
    assert outcome.error == "States.Runtime"
    assert "missing" in outcome.cause


def test_unexpected_invoker_exception_is_a_task_failure():
    def invoke(resource, params):
        raise KeyError("nope")

    definition = {"StartAt": "T", "States": {"T": task("f", End=True)}}
    outcome = StateMachine(definition, invoke).execute({})
    assert (outcome.error, outcome.failed_state) == ("KeyError", "T")


def test_validation_reports_broken_definitions():
    problems = validate_definition(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Task", "Resource": LAMBDA, "Next": "Nowhere"},
                "B": {"Type": "Pass"},
                "C": {"Type": "Magic", "End": True},
                "D": {
                    "Type": "Task",
                    "Resource": LAMBDA,
                    "End": True,
                    "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "A"}],
                },
            },
        }
    )
    text = "\n".join(problems)
    assert "unknown state 'Nowhere'" in text
    assert "B: needs exactly one of Next or End" in text
    assert "unsupported Type 'Magic'" in text
    assert "States.ALL must be alone" in text
    with pytest.raises(ValueError, match="invalid state machine"):
        StateMachine({"StartAt": "X", "States": {}}, lambda r, p: None)


def test_wait_and_pass_with_result_and_null_result_path():
    definition = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Keep"},
            "Keep": {"Type": "Pass", "Result": {"ignored": True}, "ResultPath": None, "Next": "Add"},
            "Add": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.added", "End": True},
        },
    }
    slept = []
    outcome = StateMachine(definition, lambda r, p: None, sleep=slept.append).execute({"delay": 30})
    assert outcome.output == {"delay": 30, "added": {"n": 1}}
    assert slept == [30.0]


def test_supported_choice_comparisons_path_forms_and_null_checks():
    rules = [
        ({"Variable": "$.s", "StringLessThan": "b"}, True),
        ({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.t"}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 3}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.m"}, False),
        ({"Variable": "$.n", "StringEquals": "3"}, False),  # a number is never a string
        ({"Variable": "$.none", "IsNull": True}, True),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        (
            {
                "Or": [
                    {"Variable": "$.b", "BooleanEquals": False},
                    {"Variable": "$.n", "NumericGreaterThan": 2},
                ]
            },
            True,
        ),
    ]
    data = {"s": "a", "t": "z", "n": 3, "m": 4, "b": True, "none": None}
    for rule, expected in rules:
        definition = {
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Y"}], "Default": "N"},
                "Y": {"Type": "Pass", "Result": True, "End": True},
                "N": {"Type": "Pass", "Result": False, "End": True},
            },
        }
        assert StateMachine(definition, lambda r, p: None).execute(data).output is expected, rule


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Type": "Map", "Iterator": {}, "End": True}, "S: unsupported Type 'Map'"),
        ({**task("f"), "TimeoutSeconds": 60, "End": True}, "S: unsupported Task field TimeoutSeconds"),
        (
            {**task("f"), "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "FULL"}], "End": True},
            "S: unsupported Retry[0] field JitterStrategy",
        ),
        (
            {"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z", "End": True},
            "S: unsupported Wait field Timestamp",
        ),
        (
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.t", "TimestampLessThan": "2030-01-01T00:00:00Z", "Next": "S"}],
            },
            "S: choice 0: unsupported Choice operator TimestampLessThan",
        ),
        (
            {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.n", "StringMatches": "a*"}, "Next": "S"}]},
            "S: choice 0 Not: unsupported Choice operator StringMatches",
        ),
        (
            {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": "1", "Next": "S"}]},
            "S: choice 0: NumericEquals does not take '1'",
        ),
        (
            {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.a, 1)"}, "End": True},
            "S: Parameters n.$: unsupported intrinsic function States.MathAdd",
        ),
        (
            {"Type": "Fail", "CausePath": "States.JsonToString($.a, $.b)"},
            "S: CausePath: States.JsonToString: wrong number of arguments (2)",
        ),
        ({"Type": "Pass", "InputPath": "$.a..b", "End": True}, "S: InputPath: invalid path '$.a..b'"),
    ],
)
def test_unsupported_features_fail_at_load_time_naming_the_state(state, expected):
    from recsys.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        StateMachine({"StartAt": "S", "States": {"S": state}}, lambda r, p: None)
    assert expected in info.value.message
