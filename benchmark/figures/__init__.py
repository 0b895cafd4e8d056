"""Figures and tables from ``results/`` only: learning curves, the paper's figures, final returns
(``plots``, ``report``), and frames of every task and renderer (``render_views``)."""
