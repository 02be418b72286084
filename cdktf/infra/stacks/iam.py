"""IAM as data: each resource declares one ``role -> {who: member}`` map beside it.

``grant`` turns such a map into additive ``*_iam_member`` resources (never the
authoritative ``*_iam_policy``/``*_iam_binding``, which would strip grants the
project already has). ``who`` is a short, stable label used in construct ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from constructs import Construct

RoleMap = Mapping[str, Mapping[str, str]]


def grant(scope: Construct, member_resource: Callable[..., Any], roles: RoleMap, **target: Any) -> list[Any]:
    """Create ``member_resource(scope, id, role=…, member=…, **target)`` for every (role, member) of ``roles``."""
    return [
        member_resource(scope, f"{role.rsplit('/', 1)[-1]}-{who}", role=role, member=member, **target)
        for role, members in roles.items()
        for who, member in members.items()
    ]
