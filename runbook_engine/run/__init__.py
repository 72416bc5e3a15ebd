"""Executing a tailored runbook: the runner's flow, checkpoints, gates, approvals and the terminal
reporter (DESIGN.md §4).  Step kinds execute in :mod:`runbook_engine.run.steps`.
"""
