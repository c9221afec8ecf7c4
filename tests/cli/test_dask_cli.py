"""The fastseg command on a Dask cluster (--workers, --scheduler, --persist): the local
command's outputs, and bad requests as one line with exit 2."""

import polars as pl
import pytest
from test_cli import assert_one_line_error, run

from fastseg.datasets import FEATURES

pytest.importorskip("distributed")

FEATURE_ARG = ",".join(FEATURES)


def test_fit_on_workers_writes_the_local_model_file_and_labels(customers, tmp_path, capsys):
    common = ["--k", 4, "--features", FEATURE_ARG, "--categorical", "region"]
    local, dask = tmp_path / "local.json", tmp_path / "dask.json"
    code, _, err = run(
        capsys,
        "fit",
        customers,
        *common,
        "--algorithm",
        "lloyd",
        "--model",
        local,
        "--labels",
        tmp_path / "local.parquet",
    )
    assert code == 0, err
    code, out, err = run(
        capsys,
        "fit",
        customers,
        *common,
        "--model",
        dask,
        "--labels",
        tmp_path / "dask.parquet",
        "--workers",
        2,
        "--persist",
    )
    assert code == 0, err
    assert "local Dask cluster of 2 worker processes" in err
    assert "segment" in out
    assert dask.read_bytes() == local.read_bytes()
    assert pl.read_parquet(tmp_path / "dask.parquet").equals(
        pl.read_parquet(tmp_path / "local.parquet")
    )
    # predict on the workers: one file per fragment, the local labels
    code, _, err = run(
        capsys,
        "predict",
        dask,
        customers,
        "--out",
        tmp_path / "parts",
        "--workers",
        2,
        "--keep",
        "customer_id",
    )
    assert code == 0, err
    parts = sorted((tmp_path / "parts").glob("part-*.parquet"))
    assert parts
    code, _, err = run(
        capsys,
        "predict",
        local,
        customers,
        "--out",
        tmp_path / "one.parquet",
        "--keep",
        "customer_id",
    )
    assert code == 0, err
    assert pl.read_parquet(parts).equals(pl.read_parquet(tmp_path / "one.parquet"))
    # the folder is not overwritten by accident
    code, _, err = run(
        capsys, "predict", dask, customers, "--out", tmp_path / "parts", "--workers", 1
    )
    assert_one_line_error(code, err, "already holds files", "--overwrite")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--k", 3, "--persist"], ["--persist", "--workers or --scheduler"]),
        (["--k", 3, "--workers", 1, "--scheduler", "tcp://127.0.0.1:1"], ["not both"]),
        (["--k", "auto", "--workers", 1], ["--k auto does not run on Dask yet"]),
        (["--k", 3, "--scheduler", "tcp://127.0.0.1:1"], ["cannot reach the Dask scheduler"]),
    ],
)
def test_bad_cluster_requests(customers, capsys, args, needles):
    code, _, err = run(capsys, "fit", customers, "--features", "age,income", *args)
    assert_one_line_error(code, err, *needles)
