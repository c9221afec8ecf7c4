"""Model files: format 2 round trips, format-1 files (written before the Preprocessor) still
load and give the same labels, refits give today's centres to the bit, newer files are refused."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import fastseg
from fastseg.cli import main
from fastseg.cluster.fileformat import FORMAT_VERSION
from fastseg.cluster.modelfile import load_engine

DATA = Path(__file__).parents[1] / "data"
CUSTOMERS = DATA / "format1_customers.parquet"
# How each format-1 fixture was made (tests/data/README.md), by the code before this format.
FITS = {
    "plain": ["--k", "4", "--features", "age,income,tenure_months"],
    "full": [
        "--k", "5", "--features", "age,income,tenure_months,avg_order_value,total",
        "--derive", "total = monthly_charge * 12 + avg_order_value",
        "--log1p", "income,avg_order_value", "--categorical", "region", "--missing", "mean",
        "--scale", "robust", "--pca", "4",
    ],
    "minibatch": [
        "--k", "4", "--algorithm", "minibatch", "--features", "age,income,spending_score",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", list(FITS))
@pytest.mark.parametrize("loader", [fastseg.load, load_engine], ids=["estimator", "engine"])
def test_format_1_files_load_and_give_the_same_labels(name, loader, tmp_path):
    model = loader(DATA / f"format1_{name}.json")
    expected = pl.read_parquet(DATA / f"format1_{name}_labels.parquet")["segment"]
    out = tmp_path / "labels.parquet"
    assert main(["predict", str(DATA / f"format1_{name}.json"), str(CUSTOMERS), "--out",
                 str(out), "--keep", "customer_id", "--quiet"]) == 0  # fmt: skip
    assert pl.read_parquet(out)["segment"].to_list() == expected.to_list()
    # the library's predict gives the same segments to the rows with every feature
    complete = pl.read_parquet(CUSTOMERS).filter(expected.is_not_null())
    if model.missing != "mean":
        np.testing.assert_array_equal(model.predict(complete), expected.drop_nulls().to_numpy())
    saved = tmp_path / "again.json"
    model.save(saved)
    assert json.loads(saved.read_text())["format_version"] == FORMAT_VERSION
    again = loader(saved)
    np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    assert again.preprocessor_.to_dict() == model.preprocessor_.to_dict()


@pytest.mark.parametrize("name", list(FITS))
def test_a_refit_gives_the_format_1_centres_and_inertia_to_the_bit(name, tmp_path):
    out = tmp_path / "m.json"
    args = ["fit", str(CUSTOMERS), *FITS[name], "--seed", "3", "--model", str(out), "--quiet"]
    assert main(args) == 0
    old = json.loads((DATA / f"format1_{name}.json").read_text())
    new = json.loads(out.read_text())
    assert new["cluster_centers"] == old["cluster_centers"]
    assert new["metrics"] == old["metrics"]
    pre = new["preprocessor"]
    if old["scaling"] is not None:
        assert pre["scaling"] == {
            "centre": old["scaling"]["mean"],
            "spread": old["scaling"]["scale"],
        }
    if old.get("pca") is not None:
        assert pre["pca"] == old["pca"]
    if old.get("imputation") is not None:
        assert pre["fill_values"] == old["imputation"]["values"]


def test_a_file_newer_than_this_fastseg_is_refused(tmp_path):
    doc = json.loads((DATA / "format1_plain.json").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(fastseg.ModelFileError, match="upgrade fastseg"):
        fastseg.load(path)


def test_the_models_do_not_import_the_model_file_module():
    import ast

    src = Path(fastseg.__file__).parent / "cluster"
    for module in ("engine.py", "lloyd.py", "minibatch.py", "estimators.py"):
        tree = ast.parse((src / module).read_text())
        names = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not any("modelfile" in n for n in names), module
