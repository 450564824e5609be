"""Long-running operations: their store, the handlers that do the work and the
controller that claims, runs, resumes and finishes them."""
