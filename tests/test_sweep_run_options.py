"""`artbench sweep run --compile/--deterministic`: the execution settings reach every seed job, its run's config and
the seed's cost, and leave the sweep's identity alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from artbench.core.device import configure_determinism


def test_execution_settings_reach_the_jobs_and_the_seed(tiny_task: Path, tmp_path: Path) -> None:
    from artbench.sweep import SweepRequest, create_runs, jobs_of, plan_sweep, run_seed_job

    request = SweepRequest(
        (str(tiny_task),), ("mtl",), (1,), tmp_path, ("max_epochs=1",), device="cpu", deterministic=True, compile=True
    )
    assert request.sweep_id == dataclasses.replace(request, compile=False, deterministic=False).sweep_id
    plan = plan_sweep(request, "CPU")
    assert plan.runs[0].config["run"] == {"device": "cpu", "amp": True, "compile": True, "deterministic": True}
    create_runs(plan)
    (job,) = jobs_of(plan)
    assert job.compile and job.deterministic
    try:
        assert run_seed_job(dataclasses.replace(job, compile=False)) == "done"  # compiling is tested elsewhere
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        configure_determinism(False)
    cost = json.loads((Path(job.run_dir) / "seed-1" / "metrics.json").read_text())["cost"]
    assert cost["deterministic"] is True and cost["compiled"] is False
