"""argon2id in the C reference implementation (argon2-cffi), on one core.

    python bench/argon2_reference.py SECONDS 'argon2id$v=19$m=19456,t=2,p=1'

The parameters are the service's own, read by bench/run from the PHC string
of a stored hash (its parameter part only; the hash itself is never read out).
Hashes a password with them for SECONDS and prints hashes per second as one
JSON line: the ceiling of logins per core, since a login verifies one hash.
"""

import json
import re
import sys
import time

from argon2.low_level import Type, hash_secret_raw

seconds = float(sys.argv[1])
params = dict(re.findall(r"([mtp])=(\d+)", sys.argv[2]))
version = int(re.search(r"v=(\d+)", sys.argv[2]).group(1))
assert sys.argv[2].startswith("argon2id$"), sys.argv[2]
cost = {"memory_cost": int(params["m"]), "time_cost": int(params["t"]), "parallelism": int(params["p"])}

hashes, start = 0, time.perf_counter()
cpu_start = time.process_time()
while time.perf_counter() - start < seconds:
    hash_secret_raw(b"bench-password-1", b"sixteen-byte-slt", hash_len=32, type=Type.ID, version=version, **cost)
    hashes += 1
wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps({"params": cost, "hashes": hashes, "per_s": hashes / wall, "per_cpu_s": hashes / cpu}))
