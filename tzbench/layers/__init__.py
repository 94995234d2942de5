"""Network layers that more than one plugin builds on (plugins never import each other).

:mod:`tzbench.layers.tps`: the TPS-STN alignment module (STN head + thin-plate-spline sampler) of
TSRN, which ASTER's rectifier and the baselines' ``stn=true`` variants use too.
"""
