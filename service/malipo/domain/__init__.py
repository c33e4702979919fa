"""The payments domain: money, statuses and their transitions, payments. Pure Python, no I/O."""
