"""What the probes app tells the apps above it, without importing them (docs/architecture.md)."""

from django.dispatch import Signal

# Sent with `run=` when a run is finalized (any final status), in the finalizing transaction.
# The reports app takes a scheduled run's report from here.
run_finished = Signal()
