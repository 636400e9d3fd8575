"""The garbage collector's settings for hookpost's long-running processes (the API and the
workers), applied once everything long-lived is built and before the traffic starts.

Nearly every object a delivery or a request makes is freed by reference counting; the
collector's work is scanning what lives on, which took a fifth of a draining worker's CPU.
The objects alive at start-up are frozen and young collections come less often
(``YOUNG_THRESHOLD``); the backlog benchmark prints the worker's memory growth, which stays
flat.
"""

import gc

# Tracked objects allocated (net of those freed) before a young collection; Python's default
# is 700, which a worker crossed every few deliveries.
YOUNG_THRESHOLD = 10_000


def settle_gc() -> None:
    """Collect once, then move every object alive now out of the collector's sight (they
    live as long as the process) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
