"""tzbench_successors built-in tzbench plugin: TextZoom's successors (issue 13).

Modules: ``tbsrn`` (TBSRN, Scene Text Telescope, CVPR 2021), ``attention`` (the transformer
blocks it shares with its recognizer), ``text_focus_transformer`` (the frozen transformer
recognizer of the text-focus loss), ``text_focus_loss`` (the loss), ``params`` (pydantic
hyper-parameters) and ``plugin`` (registration; imports no torch).
"""
