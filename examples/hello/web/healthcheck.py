"""Exit 0 when this replica answers /healthz (it then also reaches redis)."""

import os
import sys
import urllib.request

port = os.environ.get("PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as e:  # any failure means unhealthy
    print(e, file=sys.stderr)
    sys.exit(1)
