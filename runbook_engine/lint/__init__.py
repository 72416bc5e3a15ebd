"""``runbook lint``: the checks run makes (errors) plus the warning rules in :mod:`.rules`."""
