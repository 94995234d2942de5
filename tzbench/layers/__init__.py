"""Network layers that more than one plugin builds on (plugins never import each other).

:mod:`tzbench.layers.tps`: the TPS-STN alignment module (STN head + thin-plate-spline sampler) of
TSRN, which ASTER's rectifier and the baselines' ``stn=true`` variants use too.
:mod:`tzbench.layers.recurrent`: mish and TSRN's row BiGRU block in their official formulation, which
TSRN and its successors (tbsrn, pcan, tpgsr, tatt) build on.
:mod:`tzbench.layers.upsample`: their x2 sub-pixel upsampling stage and the power-of-two scale check.
"""
