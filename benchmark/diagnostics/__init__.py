"""Questions about a learner's gradients, asked through its public seam: are they right (finite
differences, ``gradient_check``) and what is in them (full APG vs decoupled DPG, ``apg_vs_dpg``)."""
