"""The benchmark around the learners, one concern per place:

- one run: ``run`` (the loop, checkpoints, budget), ``config``, ``results``, ``loggers``, ``evaluate``;
- many runs: ``sweep`` (seeds x algos x tasks through submitit, local or SLURM);
- ``figures``: curves, the paper's figures and tables, rendered frames;
- ``diagnostics``: gradient checks and APG vs DPG;
- ``speed``: physics, rendering and update costs.
"""
