"""bench scale: the records the checks read, on both backends at a tiny size."""

from __future__ import annotations

from bench.scale import run_one


def test_scale_records_local_and_ray(ray_cluster):
    local = run_one("secagg+", "local", 1, 30, 50)
    on_ray = run_one("secagg+", "ray", 1, 30, 50)
    for rec, backend in ((local, "local"), (on_ray, "ray")):
        assert rec["name"] == "scale"
        assert rec["params"] == {"task": "secagg+", "backend": backend, "cpus": 1, "clients": 30,
                                 "values": 50}
        assert rec["seconds"] > 0 and rec["server_seconds"] > 0 and rec["peak_mb"] > 0
    assert on_ray["check"] == local["check"] and on_ray["survivors"] == local["survivors"] == 27
    assert on_ray["worker_mb"] > 0


def test_scale_fedavg_record_local():
    fed = run_one("fedavg", "local", 1, 20, 650)
    assert fed["params"]["task"] == "fedavg" and fed["survivors"] == 20 and fed["peak_mb"] > 0
