"""The abuse limits in template.yaml: every limit of the core is a parameter that reaches the
functions; the optional AWS WAF web ACL exists only when asked for and limits the public API per
IP, not the controller API; the public methods that do work are throttled apart from the
controller API's; the local stacks override exactly the template's limit parameters."""

from __future__ import annotations

import pytest

from local import loopback
from rightsdesk.platform import config
from tests.template.test_auth import api_events, is_controller_route
from tests.template.test_template import load_template, props, referenced_ids


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def _parameter(field: str) -> str:
    return "Limit" + "".join(part.capitalize() for part in field.split("_"))


def test_every_limit_of_the_core_is_a_parameter_that_reaches_every_function(template):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for field in config.LIMIT_FIELDS:
        parameter = _parameter(field)
        spec = template["Parameters"][parameter]
        assert spec["Default"] == "", f"{parameter}: the default is the core's (rightsdesk.platform.config), not a copy"
        assert variables[f"LIMIT_{field.upper()}"] == {"Ref": parameter}
    assert variables["RETENTION_RATE_LIMIT_COUNTER_SECONDS"] == {"Ref": "RetentionRateLimitCounterSeconds"}


def test_the_local_stacks_override_the_limit_parameters_and_only_those(template):
    assert set(loopback.LIMITS) == {_parameter(field) for field in config.LIMIT_FIELDS}
    assert set(loopback.LIMITS) <= set(template["Parameters"])


def test_the_web_acl_is_off_by_default_and_only_exists_when_asked_for(template):
    assert template["Parameters"]["PublicApiWaf"]["Default"] == "off"
    assert template["Conditions"]["HasPublicApiWaf"] == {"Fn::Equals": [{"Ref": "PublicApiWaf"}, "on"]}
    waf = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"].startswith("AWS::WAFv2::")
    }
    assert set(waf) == {"PublicApiWebAcl", "PublicApiWebAclAssociation"}
    assert all(resource.get("Condition") == "HasPublicApiWaf" for resource in waf.values())


def test_the_web_acl_limits_the_public_api_per_ip_and_sits_on_its_stage(template):
    acl = props(template["Resources"]["PublicApiWebAcl"])
    assert acl["Scope"] == "REGIONAL" and "Allow" in acl["DefaultAction"]
    assert acl["VisibilityConfig"]["SampledRequestsEnabled"] is False, "samples would keep IP addresses"
    (rule,) = acl["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == {"Ref": "PublicApiWafRateLimit"}
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    excluded = rate["ScopeDownStatement"]["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert excluded["SearchString"] == "/v1/controller/", "the controller API is not limited per IP"
    association = props(template["Resources"]["PublicApiWebAclAssociation"])
    assert "PublicApiWebAcl" in referenced_ids(association["WebACLArn"])
    assert "PublicApi" in str(association["ResourceArn"]) and "PublicApi.Stage" in str(association["ResourceArn"])


def _decoded(resource_path: str) -> str:
    """MethodSettings' ResourcePath: "/" then the path with each "/" as "~1"; the root is "/"."""
    return "/" if resource_path == "/" else resource_path[1:].replace("~1", "/")


def test_the_public_methods_that_do_work_are_throttled_apart_from_the_controller_api(template):
    settings = props(template["Resources"]["PublicApi"])["MethodSettings"]
    public = {
        (s["HttpMethod"], _decoded(s["ResourcePath"])): s
        for s in settings
        if s.get("ThrottlingRateLimit") == {"Ref": "PublicApiThrottleRateLimit"}
    }
    assert {("POST", "/v1/requests"), ("POST", "/v1/requests/{id}/verify")} <= set(public)
    routes = {
        (method, path)
        for function, _, method, path, _ in api_events(template)
        # the HTTP connector's callback route is public too, in a function of its own
        if function in ("PublicApiFunction", "ConnectorCallbackFunction")
    }
    for (method, path), setting in public.items():
        assert (method, path) in routes, f"{method} {path}: no such public route (renamed?)"
        assert not is_controller_route(path)
        assert setting["ThrottlingBurstLimit"] == {"Ref": "PublicApiThrottleBurstLimit"}
    stage_wide = [s for s in settings if s["ResourcePath"] == "/*" and s["HttpMethod"] == "*"]
    assert stage_wide and stage_wide[0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
