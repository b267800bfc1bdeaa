"""The resource's and the fleet's keyword parameters are the model's inputs: a new input cannot be forgotten.

`ByoiInstallation` and `ByoiFleet` spell each input out as a keyword parameter, so that users' IDEs and type
checkers show them; the model (`ovh_byoi.spec.inputs`) is where an input is declared. These tests name what
a signature lacks or has too many, and which parameter has the wrong default or type.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ovh_byoi import ByoiFleet, ByoiInstallation
from ovh_byoi.spec import OVERRIDABLE, ByoiInstallationArgs

INPUTS = ByoiInstallationArgs.model_fields


def keyword_inputs(function: Callable[..., Any], besides: Iterable[str]) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(function).parameters
    return {
        name: parameter
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in besides
    }


def mismatch(what: str, declared: Iterable[str], expected: Iterable[str]) -> str:
    missing = [name for name in expected if name not in declared]
    extra = [name for name in declared if name not in expected]
    return f"{what}: add the keyword parameters {missing}, remove {extra}, in the model's order"


def wrong_parameters(parameters: dict[str, inspect.Parameter]) -> list[str]:
    """Each parameter whose default or type does not say what the model says of its input."""
    wrong = []
    for name, parameter in parameters.items():
        required = INPUTS[name].is_required()
        if required and parameter.default is not inspect.Parameter.empty:
            wrong.append(f"{name} is required by the model: give it no default")
        if not required and parameter.default is not None:
            # None lets the model's own default apply (and be recorded once, by the provider's check).
            wrong.append(f"{name} is optional in the model: its default must be None")
        if not str(parameter.annotation).startswith("pulumi.Input["):
            wrong.append(f"{name} must take a pulumi.Input[...], not {parameter.annotation}")
    return wrong


def test_the_resource_takes_every_input_of_the_model_in_order() -> None:
    parameters = keyword_inputs(ByoiInstallation.__init__, besides={"opts"})
    assert list(parameters) == list(INPUTS), mismatch("ByoiInstallation", parameters, INPUTS)


def test_the_resource_takes_each_input_as_a_pulumi_input_with_the_model_s_requirement() -> None:
    parameters = keyword_inputs(ByoiInstallation.__init__, besides={"opts"})
    assert wrong_parameters({name: parameters[name] for name in INPUTS if name in parameters}) == []


def test_the_resource_exposes_every_input_as_an_output() -> None:
    outputs = {
        name: annotation
        for name, annotation in inspect.get_annotations(ByoiInstallation).items()
        if str(annotation).startswith("pulumi.Output[")
    }
    missing = [name for name in INPUTS if name not in outputs]
    assert missing == [], f"ByoiInstallation: declare {missing} as `name: pulumi.Output[...]` attributes"


def test_the_fleet_takes_every_input_a_server_may_override_in_order() -> None:
    parameters = keyword_inputs(ByoiFleet.__init__, besides={"servers", "canary", "max_parallel", "opts"})
    assert list(parameters) == list(OVERRIDABLE), mismatch("ByoiFleet", parameters, OVERRIDABLE)


def test_the_fleet_takes_each_input_as_a_pulumi_input_with_the_model_s_requirement() -> None:
    parameters = keyword_inputs(ByoiFleet.__init__, besides={"servers", "canary", "max_parallel", "opts"})
    assert wrong_parameters({name: parameters[name] for name in OVERRIDABLE if name in parameters}) == []


def test_a_fleet_s_server_may_set_everything_but_its_own_service_name() -> None:
    assert set(OVERRIDABLE) == set(INPUTS) - {"service_name"}
