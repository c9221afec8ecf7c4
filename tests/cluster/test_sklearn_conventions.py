"""The estimators as a scikit-learn user meets them: output feature names, ``set_output``
containers, Pipelines (and ``fastseg.profile`` of one), as scikit-learn's own k-means."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.cluster import MiniBatchKMeans as SKMiniBatchKMeans
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import (
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_global_set_output_transform_polars,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_set_output_transform_polars,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
)

import fastseg
from fastseg.errors import DataError, FastsegError

ESTIMATORS = [(fastseg.KMeans, SKKMeans), (fastseg.MiniBatchKMeans, SKMiniBatchKMeans)]
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def X(blobs32):
    return blobs32.astype(np.float64)


# ----- get_feature_names_out -----------------------------------------------------------------
@pytest.mark.parametrize("Est, SKEst", ESTIMATORS)
def test_feature_names_out_are_scikit_learns(Est, SKEst, X):
    """Distances to each centre, named "<class name lower><i>" as scikit-learn names them."""
    ours = Est(4, random_state=0).fit(X).get_feature_names_out()
    theirs = SKEst(4, random_state=0, n_init=1).fit(X).get_feature_names_out()
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype == object
    assert ours[0] == type(Est()).__name__.lower() + "0"


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_feature_names_out_of_frames_validate_the_input_names(Est, blobs_frame):
    est = Est(4, random_state=0).fit(blobs_frame)
    prefix = Est.__name__.lower()
    expected = [f"{prefix}{i}" for i in range(4)]
    assert list(est.get_feature_names_out()) == expected
    assert list(est.get_feature_names_out(NAMES)) == expected
    with pytest.raises(ValueError, match="input_features"):
        est.get_feature_names_out(["a", "b", "x"])


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_feature_names_out_of_loaded_and_partially_fitted_models(Est, X, tmp_path):
    path = tmp_path / "model.json"
    Est(3, random_state=0).fit(X).save(path)
    assert list(fastseg.load(path).get_feature_names_out()) == [
        f"{Est.__name__.lower()}{i}" for i in range(3)
    ]
    if Est is fastseg.MiniBatchKMeans:
        partial = Est(3, random_state=0, batch_size=100).partial_fit(X[:100])
        assert len(partial.get_feature_names_out()) == 3


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_feature_names_out_before_fit_raises_not_fitted(Est):
    with pytest.raises(NotFittedError):
        Est(3).get_feature_names_out()


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_pipeline_feature_names_out(Est, blobs_frame):
    pipe = make_pipeline(StandardScaler(), Est(4, random_state=0)).fit(blobs_frame.to_pandas())
    prefix = Est.__name__.lower()
    assert list(pipe.get_feature_names_out()) == [f"{prefix}{i}" for i in range(4)]


# ----- set_output ----------------------------------------------------------------------------
@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
@pytest.mark.parametrize("output", ["pandas", "polars"])
def test_pipeline_set_output_gives_named_frames(Est, output, X):
    """StandardScaler hands the estimator a frame of that kind; the estimator's distances come
    back as one too, named by get_feature_names_out, with the values of the default output."""
    frame = pd.DataFrame(X, columns=NAMES, index=np.arange(len(X)) + 1000)

    def pipe():
        return make_pipeline(StandardScaler(), Est(4, random_state=0))

    plain = pipe().fit(frame)
    expected = plain.transform(frame)
    assert isinstance(expected, np.ndarray)
    names = [f"{Est.__name__.lower()}{i}" for i in range(4)]
    kind = pd.DataFrame if output == "pandas" else pl.DataFrame

    framed = pipe().set_output(transform=output)
    fitted_out = framed.fit_transform(frame)
    out = framed.transform(frame)
    for result in (fitted_out, out):
        assert isinstance(result, kind)
        assert list(result.columns) == names
        assert len(result) == len(X)
    if output == "pandas":  # the input's index is kept, as scikit-learn's transformers keep it
        np.testing.assert_array_equal(out.index, frame.index)
    # a frame the estimator streams is read in float32: the same fit up to rounding
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(fitted_out), np.asarray(out))

    framed.set_output(transform="default")
    assert isinstance(framed.transform(frame), np.ndarray)


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_set_output_on_the_estimator_with_a_polars_input(Est, blobs_frame):
    est = Est(4, random_state=0).set_output(transform="polars")
    out = est.fit_transform(blobs_frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == [f"{Est.__name__.lower()}{i}" for i in range(4)]
    np.testing.assert_array_equal(
        out.to_numpy(), est.set_output(transform="default").transform(blobs_frame)
    )


SET_OUTPUT_CHECKS = [
    check_get_feature_names_out_error,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_set_output_transform,
    # fitted on an array, then given a frame: its columns taken by position, with
    # scikit-learn's warning "X has feature names, but ... was fitted without feature names"
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_set_output_transform_polars,
    check_global_set_output_transform_polars,
]


@pytest.mark.parametrize(
    "estimator",
    [fastseg.KMeans(n_clusters=3), fastseg.MiniBatchKMeans(n_clusters=3, batch_size=10)],
    ids=["KMeans", "MiniBatchKMeans"],
)
@pytest.mark.parametrize(
    "check",
    SET_OUTPUT_CHECKS,
    ids=[
        "names_out_error",
        "names_out",
        "names_out_pandas",
        "set_output",
        "pandas",
        "global_pandas",
        "polars",
        "global_polars",
    ],
)
def test_scikit_learn_feature_name_and_set_output_checks(estimator, check):
    """scikit-learn runs these on its own transformers only (sklearn/tests/test_common.py),
    not in parametrize_with_checks; several skip silently when the API is missing."""
    assert hasattr(estimator, "get_feature_names_out") and hasattr(estimator, "set_output")
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("Est", [fastseg.KMeans, fastseg.MiniBatchKMeans])
def test_scikit_learn_parameter_validation_check(Est):
    """Every parameter's constraints are well formed (pca's share is a RealNotInt: pca=1 is
    one component, pca=1.0 all the variance) and bad values are refused before any work."""
    check_param_validation(Est.__name__, Est(n_clusters=3, batch_size=10))


# ----- fastseg.profile of a Pipeline ---------------------------------------------------------
@pytest.fixture(scope="module")
def profiled(blobs_frame):
    model = fastseg.KMeans(4, random_state=0, scale="standard").fit(blobs_frame)
    return model, fastseg.profile(model, blobs_frame)


@pytest.mark.parametrize(
    "before",
    [["passthrough"], [None], [FunctionTransformer()], ["passthrough", FunctionTransformer()]],
    ids=["passthrough", "None", "FunctionTransformer", "two"],
)
def test_profile_of_a_pipeline_that_changes_nothing(before, blobs_frame, profiled):
    model, expected = profiled
    steps = [(f"step{i}", step) for i, step in enumerate(before)]
    km = fastseg.KMeans(4, random_state=0, scale="standard")
    pipe = Pipeline([*steps, ("kmeans", km)]).fit(blobs_frame)
    np.testing.assert_array_equal(pipe[-1].cluster_centers_, model.cluster_centers_)
    assert fastseg.profile(pipe, blobs_frame).equals(expected)


def test_profile_of_a_nested_pipeline(blobs_frame, profiled):
    model, expected = profiled
    inner = Pipeline([("kmeans", fastseg.KMeans(4, random_state=0, scale="standard"))])
    pipe = Pipeline([("noop", "passthrough"), ("model", inner)]).fit(blobs_frame)
    assert fastseg.profile(pipe, blobs_frame).equals(expected)


def test_profile_of_a_pipeline_that_scales_says_to_scale_in_the_model(blobs_frame):
    """The model's features are scaled values: profiling raw data with its last step alone
    would assign rows in the wrong units. The error says what to pass instead."""
    pipe = make_pipeline(StandardScaler(), fastseg.KMeans(4, random_state=0))
    pipe.fit(blobs_frame.to_pandas())
    with pytest.raises(DataError, match=r"'standardscaler' \(sklearn\.StandardScaler\)") as err:
        fastseg.profile(pipe, blobs_frame)
    assert "scale='standard'" in str(err.value)


@pytest.mark.parametrize(
    "model, named",
    [
        (SKKMeans(2), "sklearn.KMeans"),
        ("model.json", "str"),
        (Pipeline([("kmeans", SKKMeans(2))]), "sklearn.KMeans"),
    ],
    ids=["sklearn-KMeans", "path", "pipeline-of-sklearn"],
)
def test_profile_of_something_else_names_it_and_what_to_pass(model, named, blobs_frame):
    with pytest.raises(FastsegError, match=rf"fitted fastseg model .* not {named}$"):
        fastseg.profile(model, blobs_frame)


def test_profile_of_an_unfitted_pipeline_says_so(blobs_frame):
    with pytest.raises(NotFittedError):
        fastseg.profile(Pipeline([("kmeans", fastseg.KMeans(4))]), blobs_frame)


def test_a_model_fitted_on_an_array_reads_a_frame_by_position_with_a_warning(blobs32):
    model = fastseg.KMeans(4, random_state=0).fit(blobs32)
    frame = pl.DataFrame(blobs32, schema=["x", "y", "z"])
    with pytest.warns(UserWarning, match="X has feature names, but KMeans was fitted without"):
        labels = model.predict(frame)
    np.testing.assert_array_equal(labels, model.predict(blobs32))
    with pytest.raises(DataError, match="without column names"):
        model.predict(frame.drop("z"))
