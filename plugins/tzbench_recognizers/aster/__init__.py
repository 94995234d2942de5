"""ASTER (Shi et al., TPAMI 2018) as TextZoom uses it: the judge ``demo.pth.tar`` loads into it.

Kept import-free so that ``tzbench_recognizers.aster.params`` stays cheap; the network lives in
:mod:`tzbench_recognizers.aster.net`, the rectifier in :mod:`.tps`, the judge in :mod:`.judge`.
"""
