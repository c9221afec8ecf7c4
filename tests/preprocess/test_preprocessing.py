"""Scaling choices (standard, minmax, robust) and log1p: fitted in the decode pass, stored in the
model, replayed by predict, and undone for centres in business units."""

import json

import numpy as np
import polars as pl
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

import fastseg
from fastseg.cli import main
from fastseg.errors import DataError
from fastseg.preprocess.categories import UnseenCategoryWarning
from fastseg.workflow.segments import centers_in_original_units

SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    income = rng.lognormal(10.5, 0.8, 5000)  # skewed money
    age = rng.normal(45, 12, 5000)
    visits = rng.poisson(4, 5000).astype(float)
    return np.column_stack([income, age, visits])


def init_for(X, k=4):
    return X[np.random.default_rng(1).choice(X.shape[0], k, replace=False)]


@pytest.mark.parametrize("scale", ["standard", "minmax", "robust"])
def test_scaling_equals_scikit_learns_scaler_then_kmeans(X, scale):
    scaler = SCALERS[scale]().fit(X)
    scaled = scaler.transform(X)
    init = init_for(scaled)
    ours = fastseg.KMeans(4, init=init, scale=scale, algorithm="lloyd", tol=0).fit(X)
    plain = fastseg.KMeans(4, init=init, scale="none", algorithm="lloyd", tol=0).fit(scaled)
    centre = {"standard": "mean_", "minmax": "data_min_", "robust": "center_"}[scale]
    np.testing.assert_allclose(ours.scale_mean_, getattr(scaler, centre), rtol=1e-12)
    spread = scaler.scale_ if scale != "minmax" else 1 / scaler.scale_
    np.testing.assert_allclose(ours.scale_std_, spread, rtol=1e-12)
    assert np.array_equal(ours.labels_, plain.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, plain.cluster_centers_, rtol=1e-9)
    assert np.array_equal(ours.predict(X[:500]), plain.predict(scaled[:500]))


def test_log1p_then_scaling(X):
    logged = X.copy()
    logged[:, 0] = np.log1p(logged[:, 0])
    init = init_for(StandardScaler().fit_transform(logged))
    ours = fastseg.KMeans(4, init=init, scale="standard", log1p=[0], tol=0).fit(X)
    plain = fastseg.KMeans(4, init=init, scale="standard", tol=0).fit(logged)
    assert np.array_equal(ours.labels_, plain.labels_)
    assert np.array_equal(ours.predict(X), plain.predict(logged))
    back = centers_in_original_units(ours)
    np.testing.assert_allclose(back[:, 0], np.expm1(centers_in_original_units(plain)[:, 0]))


def test_log1p_by_name_round_trips_through_the_model_file(X, tmp_path):
    frame = pl.DataFrame(X, schema=["income", "age", "visits"])
    model = fastseg.KMeans(3, random_state=0, scale="robust", log1p=["income"]).fit(frame)
    path = tmp_path / "m.json"
    model.save(path)
    doc = json.loads(path.read_text())
    assert doc["params"]["log1p"] == ["income"]
    assert doc["preprocessor"]["settings"]["scale"] == "robust"
    loaded = fastseg.load(path)
    assert np.array_equal(loaded.predict(frame), model.labels_)


def test_log1p_refuses_values_at_or_below_minus_one(X):
    bad = X.copy()
    bad[7, 2] = -3.0
    frame = pl.DataFrame(bad, schema=["income", "age", "visits"])
    with pytest.raises(DataError, match="log1p needs values above -1, and column 'visits'"):
        fastseg.KMeans(3, log1p=["visits"]).fit(frame)
    with pytest.raises(DataError, match="not a feature"):
        fastseg.KMeans(3, log1p=["nope"]).fit(frame)


def test_robust_scaling_on_spilled_data_equals_in_memory(X, tmp_path):
    ram = fastseg.KMeans(4, random_state=0, scale="robust").fit(X)
    spilled = fastseg.KMeans(
        4, random_state=0, scale="robust", memory_budget=1000, spill_dir=tmp_path
    ).fit(X)
    np.testing.assert_array_equal(ram.scale_mean_, spilled.scale_mean_)
    np.testing.assert_array_equal(ram.scale_std_, spilled.scale_std_)
    assert np.array_equal(ram.labels_, spilled.labels_)


def test_fit_command_with_robust_scaling_and_log1p(X, tmp_path, capsys):
    path = tmp_path / "d.parquet"
    pl.DataFrame(X, schema=["income", "age", "visits"]).write_parquet(path)
    model_path = tmp_path / "m.json"
    args = [
        "fit",
        str(path),
        "--k",
        "3",
        "--features",
        "income,age,visits",
        "--scale",
        "robust",
        "--log1p",
        "income",
        "--model",
        str(model_path),
        "--quiet",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    doc = json.loads(model_path.read_text())
    assert doc["preprocessor"]["settings"]["scale"] == "robust"
    assert doc["params"]["log1p"] == ["income"]
    row = out.split("income (centre)")[1].split("\n")[0]  # log1p: the centre, not a mean
    incomes = [float(v.replace(",", "")) for v in row.split()]
    assert all(5_000 < v < 500_000 for v in incomes)  # centres shown in dollars, not logs


# ----- derived features ----------------------------------------------------------------------
@pytest.fixture()
def spend(tmp_path):
    rng = np.random.default_rng(2)
    frame = pl.DataFrame(
        {
            "wines": rng.gamma(2.0, 100.0, 3000),
            "meat": rng.gamma(2.0, 60.0, 3000),
            "age": rng.normal(45, 12, 3000),
        }
    )
    path = tmp_path / "spend.parquet"
    frame.write_parquet(path, row_group_size=800)
    return frame, path


def test_derived_feature_equals_the_column_computed_by_hand(spend):
    frame, path = spend
    by_hand = frame.with_columns(total=pl.col("wines") + pl.col("meat") * 2)
    derive = ["total = wines + meat * 2"]
    ours = fastseg.KMeans(3, random_state=0, scale="standard", derive=derive)
    ours.fit(path, columns=["total", "age"])
    plain = fastseg.KMeans(3, random_state=0, scale="standard").fit(
        by_hand, columns=["total", "age"]
    )
    assert np.array_equal(ours.labels_, plain.labels_)
    assert np.array_equal(ours.predict(frame), plain.labels_)  # derived again from raw columns


def test_derived_features_round_trip_through_the_model_file(spend, tmp_path):
    frame, path = spend
    model = fastseg.KMeans(3, random_state=0, derive=["total = wines + meat"]).fit(
        path, columns=["total", "age"]
    )
    model.save(tmp_path / "m.json")
    loaded = fastseg.load(tmp_path / "m.json")
    assert loaded.derive == ["total = wines + meat"]
    assert np.array_equal(loaded.predict(path), model.labels_)


@pytest.mark.parametrize(
    "derive, needle",
    [
        (["total wines + meat"], "write it as name = expression"),
        (["total = wines +"], "cannot read the derived feature"),
        (["total = wines + fish"], "cannot derive total"),
    ],
)
def test_bad_derived_features_are_clear_errors(spend, derive, needle):
    _, path = spend
    with pytest.raises(DataError, match=needle):
        fastseg.KMeans(2, derive=derive).fit(path, columns=["total"])


def test_derive_needs_named_columns(X):
    with pytest.raises(DataError, match="not an array"):
        fastseg.KMeans(2, derive=["t = a + b"]).fit(X)


def test_fit_command_with_a_derived_feature(spend, tmp_path, capsys):
    frame, path = spend
    model_path, labels_path = tmp_path / "m.json", tmp_path / "l.parquet"
    out_path = tmp_path / "o.parquet"
    args = [
        "fit",
        str(path),
        "--k",
        "3",
        "--features",
        "total,age",
        "--derive",
        "total = wines + meat",
        "--model",
        str(model_path),
        "--labels",
        str(labels_path),
        "--quiet",
    ]
    assert main(args) == 0
    assert "total" in capsys.readouterr().out  # the segment table shows the derived feature
    labels = pl.read_parquet(labels_path)
    assert labels.columns == ["wines", "meat", "age", "segment"]  # input columns + segment
    assert main(["predict", str(model_path), str(path), "--out", str(out_path), "--quiet"]) == 0
    assert pl.read_parquet(out_path)["segment"].to_list() == labels["segment"].to_list()
    assert main(["profile", str(model_path), str(path), "--quiet"]) == 0
    assert "total mean (z)" in capsys.readouterr().out


# ----- filling missing values ----------------------------------------------------------------
@pytest.fixture()
def holes(X):
    frame = pl.DataFrame(X, schema=["income", "age", "visits"])
    rng = np.random.default_rng(3)
    return frame.with_columns(
        pl.when(pl.Series(rng.random(5000) < 0.05)).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("income", "visits")
    )


@pytest.mark.parametrize("method", ["mean", "median"])
def test_missing_values_are_filled_as_scikit_learns_imputer(holes, method, tmp_path):
    from sklearn.impute import SimpleImputer

    values = holes.to_numpy().astype(np.float32)  # frames are decoded as float32
    imputer = SimpleImputer(strategy=method).fit(values.astype(np.float64))
    filled = imputer.transform(values.astype(np.float64)).astype(np.float32)
    init = init_for(StandardScaler().fit_transform(filled))
    ours = fastseg.KMeans(4, init=init, scale="standard", missing=method, tol=0).fit(holes)
    plain = fastseg.KMeans(4, init=init, scale="standard", tol=0).fit(filled)
    np.testing.assert_allclose(ours.impute_values_, imputer.statistics_, rtol=1e-12)
    assert ours.n_imputed_ == holes.null_count().sum_horizontal().item() and ours.n_imputed_ > 0
    assert ours.labels_.shape == (5000,) and np.array_equal(ours.labels_, plain.labels_)
    assert np.array_equal(ours.predict(holes), plain.predict(filled))  # predict fills too
    np.testing.assert_allclose(ours.cluster_centers_, plain.cluster_centers_, rtol=1e-9)
    ours.save(tmp_path / "m.json")
    assert np.array_equal(fastseg.load(tmp_path / "m.json").predict(holes), ours.labels_)


def test_filling_refuses_nan_values_and_empty_columns(holes):
    with_nan = holes.with_columns(
        pl.when(pl.int_range(pl.len()) == 9)
        .then(float("nan"))
        .otherwise(pl.col("age"))
        .alias("age")
    )
    with pytest.raises(DataError, match="column 'age' of the DataFrame holds NaN"):
        fastseg.KMeans(3, missing="mean").fit(with_nan)
    empty = holes.with_columns(pl.lit(None, dtype=pl.Float64).alias("visits"))
    with pytest.raises(DataError, match="'visits' has no values at all"):
        fastseg.KMeans(3, missing="median").fit(empty)


def test_filling_on_spilled_data_equals_in_memory(holes, tmp_path):
    ram = fastseg.KMeans(4, random_state=0, missing="median", scale="robust").fit(holes)
    spilled = fastseg.KMeans(
        4,
        random_state=0,
        missing="median",
        scale="robust",
        memory_budget=1000,
        spill_dir=tmp_path,
    ).fit(holes)
    np.testing.assert_array_equal(ram.impute_values_, spilled.impute_values_)
    assert np.array_equal(ram.labels_, spilled.labels_)


def test_fit_command_fills_missing_values(holes, tmp_path, capsys):
    path, labels_path = tmp_path / "d.parquet", tmp_path / "l.parquet"
    holes.write_parquet(path)
    args = [
        "fit",
        str(path),
        "--k",
        "3",
        "--features",
        "income,age,visits",
        "--missing",
        "mean",
        "--labels",
        str(labels_path),
    ]
    assert main(args) == 0
    assert "missing feature values with the feature means" in capsys.readouterr().err
    assert pl.read_parquet(labels_path)["segment"].null_count() == 0


# ----- PCA -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(4)
    latent = rng.normal(size=(4000, 3))
    return latent @ rng.normal(size=(3, 7)) + 0.3 * rng.normal(size=(4000, 7)) + 5.0


@pytest.mark.parametrize("keep", [3, 0.9])
def test_pca_equals_scikit_learns(wide, keep):
    from sklearn.decomposition import PCA

    scaled = StandardScaler().fit_transform(wide)
    theirs = PCA(keep).fit(scaled)
    ours = fastseg.KMeans(3, random_state=0, scale="standard", pca=keep).fit(wide).pca_
    assert ours.components.shape == theirs.components_.shape
    np.testing.assert_allclose(ours.components, theirs.components_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance, theirs.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, theirs.explained_variance_ratio_, rtol=1e-8
    )


def test_kmeans_on_components_equals_kmeans_on_transformed_rows(wide, tmp_path):
    from sklearn.decomposition import PCA

    transformed = PCA(3).fit_transform(StandardScaler().fit_transform(wide))
    init = init_for(transformed, 3)
    ours = fastseg.KMeans(3, init=init, scale="standard", pca=3, tol=0).fit(wide)
    plain = fastseg.KMeans(3, init=init, tol=0).fit(transformed)
    assert np.array_equal(ours.labels_, plain.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, plain.cluster_centers_, atol=1e-6)
    assert np.array_equal(ours.predict(wide), ours.labels_)
    ours.save(tmp_path / "m.json")
    loaded = fastseg.load(tmp_path / "m.json")
    assert np.array_equal(loaded.predict(wide), ours.labels_)
    back = centers_in_original_units(loaded)  # through the components, then the scaling
    means = np.array([wide[ours.labels_ == c].mean(axis=0) for c in range(3)])
    assert back.shape == (3, 7) and np.abs(back - means).max() < 0.5


def test_pca_on_spilled_data_equals_in_memory(wide, tmp_path):
    ram = fastseg.KMeans(3, random_state=0, scale="standard", pca=2).fit(wide)
    spilled = fastseg.KMeans(
        3, random_state=0, scale="standard", pca=2, memory_budget=1000, spill_dir=tmp_path
    ).fit(wide)
    np.testing.assert_array_equal(ram.pca_.components, spilled.pca_.components)
    assert np.array_equal(ram.labels_, spilled.labels_)


def test_bad_pca_settings(wide):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        fastseg.KMeans(3, pca=1.5).fit(wide)
    with pytest.raises(DataError, match="from 1 to 7"):
        fastseg.KMeans(3, pca=9).fit(wide)


def test_pca_share_one_keeps_every_component_and_one_keeps_one(wide):
    assert fastseg.KMeans(3, random_state=0, pca=1.0).fit(wide).cluster_centers_.shape[1] == 7
    assert fastseg.KMeans(3, random_state=0, pca=1).fit(wide).cluster_centers_.shape[1] == 1


# ----- one-hot categorical columns -----------------------------------------------------------
@pytest.fixture()
def shops():
    rng = np.random.default_rng(6)
    n = 3000
    return pl.DataFrame(
        {
            "spend": rng.gamma(3.0, 50.0, n),
            "visits": rng.poisson(5, n).astype(float),
            "region": rng.choice(["east", "north", "west"], n),
            "channel": rng.choice(["app", "web"], n),
        }
    )


def test_one_hot_columns_equal_the_encoding_by_hand(shops):
    w = 0.7
    numeric = StandardScaler().fit_transform(shops.select("spend", "visits").to_numpy())
    hand = np.column_stack(
        [numeric]
        + [(shops["region"] == v).to_numpy() * w for v in ("east", "north", "west")]
        + [(shops["channel"] == v).to_numpy() * w for v in ("app", "web")]
    )
    init = init_for(hand, 4)
    ours = fastseg.KMeans(
        4, init=init, scale="standard", categorical=["region", "channel"], category_weight=w, tol=0
    ).fit(shops, columns=["spend", "visits"])
    plain = fastseg.KMeans(4, init=init, tol=0).fit(hand)
    assert ours.categories_ == {"region": ["east", "north", "west"], "channel": ["app", "web"]}
    assert list(ours.feature_names_in_[2:]) == [
        "region=east",
        "region=north",
        "region=west",
        "channel=app",
        "channel=web",
    ]
    assert np.array_equal(ours.labels_, plain.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, plain.cluster_centers_, rtol=1e-6)
    shares = centers_in_original_units(ours)[:, 2:5]  # one-hot centres read as shares
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-6)


def test_unseen_and_missing_categories_are_counted_never_a_crash(shops, tmp_path, capsys):
    fit_path, new_path = tmp_path / "fit.parquet", tmp_path / "new.parquet"
    shops.write_parquet(fit_path)
    new = (
        shops.head(10)
        .with_columns(
            pl.when(pl.int_range(pl.len()) < 3)
            .then(pl.lit("south"))
            .otherwise(pl.col("region"))
            .alias("region")
        )
        .with_columns(
            pl.when(pl.int_range(pl.len()) == 9)
            .then(None)
            .otherwise(pl.col("channel"))
            .alias("channel")
        )
    )
    new.write_parquet(new_path)
    model_path, out = tmp_path / "m.json", tmp_path / "o.parquet"
    args = [
        "fit",
        str(fit_path),
        "--k",
        "3",
        "--features",
        "spend,visits",
        "--categorical",
        "region,channel",
        "--model",
        str(model_path),
        "--quiet",
    ]
    assert main(args) == 0
    assert main(["predict", str(model_path), str(new_path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "note: categories the fit never saw, in region: 3 rows (e.g. 'south')" in err
    assert "channel" not in err  # a null is not a new category
    labels = pl.read_parquet(out)["segment"]
    assert labels.null_count() == 0 and labels.len() == 10
    loaded = fastseg.load(model_path)
    assert loaded.categories_["region"] == ["east", "north", "west"]
    with pytest.warns(UnseenCategoryWarning, match="never saw, in region: 3 rows"):
        assert loaded.predict(new).shape == (10,)


def test_bad_categorical_columns(shops, X):
    with pytest.raises(DataError, match="no such categorical column"):
        fastseg.KMeans(2, categorical=["nope"]).fit(shops, columns=["spend"])
    ids = shops.with_columns(region=pl.int_range(pl.len()).cast(pl.String))
    with pytest.raises(DataError, match="is it an id"):
        fastseg.KMeans(2, categorical=["region"]).fit(ids, columns=["spend"])
    with pytest.raises(DataError, match="not an array"):
        fastseg.KMeans(2, categorical=["region"]).fit(X)


# ----- combinations found in review ------------------------------------------------------------
def test_log1p_with_filling_predicts_the_fit_labels(holes):
    model = fastseg.KMeans(3, random_state=0, scale="standard", missing="mean", log1p=["income"])
    model.fit(holes)
    assert np.array_equal(model.predict(holes), model.labels_)  # null rows included


def test_pca_with_weights_that_sum_to_one(wide):
    n = wide.shape[0]
    plain = fastseg.KMeans(3, random_state=0, scale="standard", pca=2).fit(wide)
    weighted = fastseg.KMeans(3, random_state=0, scale="standard", pca=2).fit(
        wide, sample_weight=np.full(n, 1.0 / n)
    )
    np.testing.assert_allclose(
        weighted.pca_.explained_variance_ratio, plain.pca_.explained_variance_ratio, rtol=1e-9
    )
    assert np.isfinite(weighted.pca_.explained_variance).all()
    assert weighted.pca_.explained_variance.max() < 10


def test_categorical_with_derived_features_and_no_columns(shops):
    model = fastseg.KMeans(
        3,
        random_state=0,
        derive=["per_visit = spend / (visits + 1)"],
        categorical=["region", "channel"],
    ).fit(shops)
    names = list(model.feature_names_in_)
    assert names[:3] == ["spend", "visits", "per_visit"] and "region=east" in names


def test_partial_fit_refuses_what_one_batch_cannot_learn(X):
    with pytest.raises(DataError, match="partial_fit sees one batch"):
        fastseg.MiniBatchKMeans(3, log1p=[0]).partial_fit(X)


def test_categorical_columns_must_be_text_boolean_or_integer(shops):
    dated = shops.with_columns(
        day=pl.date(2026, 1, 1) + pl.duration(days=pl.int_range(pl.len()) % 3)
    )
    with pytest.raises(DataError, match="'day' of the DataFrame is Date"):
        fastseg.KMeans(2, categorical=["day"]).fit(dated, columns=["spend"])


def test_labels_can_keep_a_derived_feature(spend, tmp_path):
    _, path = spend
    out = tmp_path / "l.parquet"
    args = [
        "fit",
        str(path),
        "--k",
        "2",
        "--features",
        "total",
        "--derive",
        "total = wines + meat",
        "--labels",
        str(out),
        "--keep",
        "total",
        "--quiet",
    ]
    assert main(args) == 0
    assert pl.read_parquet(out).columns == ["total", "segment"]


def test_robust_scaling_of_a_mostly_constant_feature_uses_its_std():
    from fastseg.errors import DataWarning

    rng = np.random.default_rng(0)
    spend = np.where(rng.random(4000) < 0.8, 0.0, rng.gamma(2, 500, 4000))
    X = np.c_[spend, rng.normal(40, 10, 4000)]
    with pytest.warns(DataWarning, match="interquartile range is 0"):
        model = fastseg.KMeans(3, random_state=0, scale="robust").fit(X)
    np.testing.assert_allclose(model.scale_std_[0], X[:, 0].std(), rtol=1e-6)
    assert model.scale_std_[1] == pytest.approx(
        np.subtract(*np.percentile(X[:, 1], [75, 25])), rel=1e-6
    )
