# SPDX-License-Identifier: MIT
"""pel_trace - tools/pel-trace's implementation: core (statistics, pure Python), ctf (bt2 reader),
report (text, JSON, TAU profiles), plots (matplotlib)."""
