"""Controllers running beside the API: level-based loops over desired and observed state
(today the operation runner and the janitor; later the scheduler, reconcilers, HA, DRS/DPM
and site recovery)."""
