"""Block storage on the API side: the configured volume drivers and the reconciler that
keeps backend objects and database rows in step."""
