"""Both platforms' local protocol servers, playing riders, for ``dinegraph simulate`` by hand.

    .venv/bin/python -m tests.fakes.platforms --server http://127.0.0.1:8000

starts ``FakeDada`` and ``FakeSfIntraCity`` on loopback ports, prints the ``DINEGRAPH_*``
settings that point a server at them, and serves until interrupted. Their riders take each
order after a step, post their signed callbacks to the server and deliver; ``--dada-plans``
and ``--sf-plans`` (``deliver``, ``no_rider``, ``cancel``, in turn) make some find no rider
or cancel. These are fakes: never a production server's platforms.
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from tests.fakes.dada import FakeDada
from tests.fakes.sf_intra_city import FakeSfIntraCity

SF_SHOP = "3243279847393"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.platforms")
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the dinegraph server")
    parser.add_argument("--dada-plans", default="deliver,no_rider,deliver,cancel")
    parser.add_argument("--sf-plans", default="deliver")
    parser.add_argument("--step-seconds", type=float, default=3.0, help="between riders' steps")
    args = parser.parse_args()
    server = args.server.rstrip("/")
    dada = FakeDada(plans=tuple(args.dada_plans.split(",")), step_seconds=args.step_seconds)
    sf = FakeSfIntraCity(
        plans=tuple(args.sf_plans.split(",")),
        step_seconds=max(args.step_seconds, 1.2),
        positions=10,
        callback_url=f"{server}/delivery/sf/callback",
    )
    with dada.running(), sf.running():
        settings = {
            "DINEGRAPH_DELIVERY_PLATFORMS": "DADA,SF_INTRA_CITY",
            "DINEGRAPH_DADA_BASE_URL": dada.url,
            "DINEGRAPH_DADA_APP_KEY": dada.app_key,
            "DINEGRAPH_DADA_APP_SECRET": dada.app_secret,
            "DINEGRAPH_DADA_SOURCE_ID": dada.source_id,
            "DINEGRAPH_DADA_CALLBACK_URL": f"{server}/delivery/dada/callback",
            "DINEGRAPH_SF_BASE_URL": sf.url,
            "DINEGRAPH_SF_DEV_ID": sf.dev_id,
            "DINEGRAPH_SF_DEV_KEY": sf.dev_key,
            "DINEGRAPH_SF_SHOP_ID": SF_SHOP,
            "DINEGRAPH_SF_CALLBACK_URL": f"{server}/delivery/sf/callback",
            "DINEGRAPH_DADA_PRIVACY_NUMBERS": "true",
            "DINEGRAPH_SF_PRIVACY_NUMBERS": "true",
        }
        print("# serve with:")
        for name, value in settings.items():
            print(f"export {name}={value}")
        print("# Ctrl-C stops the fake platforms", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
