"""The ``accelgen`` command line: the generator registry, config files, emission and demos."""
