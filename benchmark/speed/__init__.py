"""What things cost on this machine, as ratios measured in one run: physics (``physics_speed``),
rendering (``render_speed``), the APG family's backward (``apg_costs``) and the replay learners'
updates (``update_costs``); each case in its own process (``isolated``)."""
