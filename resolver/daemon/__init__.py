"""The ``corenet-resolver`` daemon: listeners, dispatch, config, control, metrics, CLI."""
