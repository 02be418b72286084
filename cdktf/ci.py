"""The identity a CI job of one environment authenticates as, from cdktf/environments.toml.

    python cdktf/ci.py dev deployer >> "$GITHUB_OUTPUT"
    python cdktf/ci.py prod planner

prints ``workload_identity_provider=…`` and ``service_account=…`` lines, the inputs of
``google-github-actions/auth``. The names are the ones the ``bootstrap-<env>`` stack
creates (both read infra/environments.py), so the workflows need no repository variables and
cannot drift from the bootstrap. Exits 1, naming the missing setting, when the
environment has no CI identities yet. Imports no CDKTF: it answers at once.
"""

from __future__ import annotations

import sys

from infra.environments import ConfigError, load_environments

ROLES = ("deployer", "planner")


def identity(env: str, role: str) -> dict[str, str]:
    """``workload_identity_provider`` and ``service_account`` of ``role`` in environment ``env``."""
    configs = {cfg.name: cfg for cfg in load_environments()}
    if env not in configs:
        raise ConfigError(f"no environment {env!r}; cdktf/environments.toml declares {sorted(configs)}")
    if role not in ROLES:
        raise ConfigError(f"no CI identity {role!r}; expected one of {list(ROLES)}")
    cfg = configs[env]
    missing = [name for name in ("github_repository", "project_number") if getattr(cfg, name) is None]
    if missing:
        raise ConfigError(f"environment {env!r} has no CI identities: set {missing} in cdktf/environments.toml "
                          f"[{env}] and apply the bootstrap-{env} stack (docs/DEPLOY.md)")
    return {
        "workload_identity_provider": cfg.workload_identity_provider,
        "service_account": cfg.service_account_email(cfg.ci_service_account_ids[role]),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: python cdktf/ci.py ENV {{{'|'.join(ROLES)}}}", file=sys.stderr)
        return 2
    try:
        values = identity(*argv)
    except ConfigError as exc:
        print(f"cdktf/ci.py: {exc}", file=sys.stderr)
        return 1
    for key, value in values.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
