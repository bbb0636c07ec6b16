"""Socket-level helpers with no Django: the address rules for user-given URLs (netguard) and the
kernel's receive timestamps (kernel_time).

Plain Python and below every app, so the probe engine and the simulator use them without
loading the core app; the guarded HTTP client in core builds on the same rules.
"""
