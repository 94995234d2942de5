"""MORAN judge (Luo et al., Pattern Recognition 2019) in the MORAN_v2 layout TextZoom uses.

Import the network from :mod:`.net`, the judge from :mod:`.judge` and the torch-free
metadata from :mod:`.params`; this package file imports nothing so that listing stays cheap.
"""
