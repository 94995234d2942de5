"""tzbench_tsrn built-in tzbench plugin: TSRN (Wang et al., ECCV 2020) and its ablations.

Modules: ``tsrn`` (the model, official-checkpoint loading), ``alignment`` (TPS-STN, shared
with the baselines' ``stn=True`` variants), ``gru`` and ``mish`` (the fast CPU path),
``params`` (pydantic hyper-parameters) and ``plugin`` (registration; imports no torch).
"""
