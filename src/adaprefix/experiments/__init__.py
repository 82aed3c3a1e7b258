"""The paper's analysis as commands: gate probing and per-layer plans (probe.py), PT2* / PT2+ prefix sizing
(variants.py), resumable hyper-parameter sweeps on Optuna (sweep.py) and result tables (report.py)."""
