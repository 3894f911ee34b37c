"""The behavioural anomaly detector (rule ``anomaly``).

One concept per module:

- ``vocabulary``: the features' names, windows, units and version;
- ``featurizer``: per-account sliding-window features on event time (pure, bounded memory),
  built on ``reduction`` (events to rows per account and bucket), ``layout`` (an account's
  state as one row of fixed-size arrays), ``own_baseline`` and ``batch`` (the vectors committed
  together and the model's inputs read from them);
- ``peers``: peer groups (department or role) and their running baselines;
- ``model``: the isolation forest (or the z-score baseline);
- ``calibration``: its alert threshold, calibrated on held-out baseline rows;
- ``store``: the model directory on disk (skops with an allow-list, manifest, SHA-256 sums),
  whose forest ``skops_forest`` reads without scikit-learn;
- ``explain``: what drove a score, in words an analyst understands;
- ``scoring_windows``: a scoring window committed in parts (the daemon's ticks);
- ``stage``: the Detector stage that scores in micro-batches and raises ``anomaly`` alerts;
- ``retrain``: which rows a periodic retraining may use;
- ``collect``: the vectors a baseline gives for training and calibration;
- ``train``: the ``watchdog train`` command.
"""
