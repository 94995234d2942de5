"""ViTSTR judge: a timm Vision Transformer encoder read out per character (Atienza, ICDAR 2021).

Import the network from :mod:`.net`, the judge from :mod:`.judge` and the torch-free
metadata from :mod:`.params`; this package file imports nothing so that listing stays cheap.
"""
