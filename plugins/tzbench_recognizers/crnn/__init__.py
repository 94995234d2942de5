"""CRNN judge (Shi et al., TPAMI 2017) in the crnn.pytorch layout TextZoom evaluates with.

Import the network from :mod:`.net`, the judge from :mod:`.judge` and the torch-free
metadata from :mod:`.params`; this package file imports nothing so that listing stays cheap.
"""
