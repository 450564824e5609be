"""The `kumo` command-line interface (click); the root group is `kumo.cli.main:cli`."""
