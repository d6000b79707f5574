"""The Docker-free local cloud: moto in server mode plus a gateway, pollers and timers that run the
handlers named in template.yaml in this process. `python -m local` is the CLI; `local.stack.LocalStack`
is the Python API the tests and benchmarks reuse.
"""
