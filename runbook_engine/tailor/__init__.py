"""A runbook filled in for one environment: environments and hosts, typed values, templating,
secrets resolved by reference (DESIGN.md §1, tailor).
"""
