"""The log-based metrics and alert conditions as plain data, derived from core/health.py: the
stacks declare them, the reports document them, and neither restates a threshold."""
