"""The streaming job's command line, as every part that builds one spells it.

The job (``jobs/config.py``) parses these options; the CDKTF app (the Dataproc job's
``args``), the benchmarks and the tests build them. Each option is a field of the
job's ``StreamConfig``, ``--`` plus the field's name with dashes, so one rule names
them all and a renamed field cannot leave a caller passing an option the job no
longer has.

    >>> job_argv({"landing": "gs://b/landing", "available_now": True, "trigger_seconds": 120})
    ['--landing', 'gs://b/landing', '--available-now', '--trigger-seconds', '120']
"""

from __future__ import annotations

from collections.abc import Mapping


def option(field: str) -> str:
    """The option of the job's config field ``field``: ``trigger_seconds`` -> ``--trigger-seconds``."""
    return "--" + field.replace("_", "-")


def job_argv(values: Mapping[str, object]) -> list[str]:
    """The job's arguments for ``{field: value}``: a flag for ``True``, nothing for ``False`` or ``None``."""
    argv: list[str] = []
    for field, value in values.items():
        if value is True:
            argv.append(option(field))
        elif value is not False and value is not None:
            argv += [option(field), str(value)]
    return argv
