"""Lambda handlers: parse the event, build the runtime, call the core. Nothing else."""
