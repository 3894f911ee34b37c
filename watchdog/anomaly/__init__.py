"""The behavioural anomaly detector (rule ``anomaly``).

One concept per module:

- ``features``: per-account sliding-window features on event time (pure, bounded memory);
- ``peers``: peer groups (department or role) and their running baselines;
- ``model``: the isolation forest (or the z-score baseline) with its calibrated threshold;
- ``store``: the model directory on disk (skops with an allow-list, manifest, SHA-256 sums);
- ``explain``: what drove a score, in words an analyst understands;
- ``stage``: the Detector stage that scores in micro-batches and raises ``anomaly`` alerts;
- ``retrain``: which rows a periodic retraining may use;
- ``train``: the ``watchdog train`` command.
"""
