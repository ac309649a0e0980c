"""Serve the pipeline from one machine, with no work pool or worker: ``python deployments/serve.py``.

It registers the same two deployments as ``prefect.yaml`` (a nightly schedule and an on-demand one) and runs
their flow runs in this process until stopped. Point ``PREFECT_API_URL`` at a Prefect server to see them in its UI.
"""

from __future__ import annotations

import os

from prefect import serve

from flows.edit_catalogue import edit_catalogue


def main() -> None:
    nightly = edit_catalogue.to_deployment(
        name="nightly-bulk-edit",
        cron="0 2 * * *",
        parameters={"dataset": os.environ.get("LEGOEDIT_NIGHTLY_DATASET", "s3://catalogue/incoming/catalogue.jsonl"),
                    "output": os.environ.get("LEGOEDIT_NIGHTLY_OUTPUT", "s3://catalogue/edited/nightly"),
                    "write_images": True},
    )
    on_demand = edit_catalogue.to_deployment(name="on-demand")
    serve(nightly, on_demand)


if __name__ == "__main__":
    main()
