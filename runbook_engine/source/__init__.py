"""The runbook as written: Markdown parsed into steps with their attributes, front matter and
parameter metadata, every element with its source span (DESIGN.md §1, parse).
"""
