"""The benchmarks' shared harness: one tested version of what every scenario needs.

A scenario (``bench/<name>.py``) keeps only what it measures; starting servers, making the
scratch database, reading CPU and memory from /proc, percentiles, HTTP and WebSocket
clients and printing the JSON line come from here. The modules are small and import only
what they use, so that a floor (a bare server the product is compared with) can import the
one it needs without growing its own memory: nothing is imported here.

- ``report``: progress, errors, the JSON line, the product's revision, the machine
- ``stats``: percentiles and rounding
- ``cpu``: CPU and memory of processes and of the machine, waiting for a quiet machine
- ``processes``: servers, the CLI, subscriber processes
- ``database``: the scratch demo database and its environment
- ``http``, ``ws``, ``gqlws``: clients, and graphql-transport-ws messages
- ``shop``, ``stock``: the demo chain as the scenarios use it
- ``runs``: a scenario's main, common options, repeating a disturbed measurement
- ``load``: a burst of attempts with at most N in flight
- ``floor``: what the floor servers share
- ``ids``: global ids as the product prints them
"""
