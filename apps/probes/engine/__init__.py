"""The probe engine: an asyncio load generator for OpenAI-compatible endpoints.

Plain Python, no Django imports: the Celery tasks, the `probe` CLI and the benchmarks all
drive the same code. Metric definitions follow DESIGN.md "Probe semantics".
"""
