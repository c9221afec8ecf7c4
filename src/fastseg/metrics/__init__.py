"""How good a segmentation is: scikit-learn's scores on Numba kernels, and scores of a fitted
model over data of any size."""

from .scores import (
    LabelStats,
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    score_chunks,
    score_model,
    silhouette_means,
    silhouette_samples,
    silhouette_score,
    stratified_quotas,
)

__all__ = [
    "LabelStats",
    "adjusted_rand_score",
    "calinski_harabasz_score",
    "davies_bouldin_score",
    "score_chunks",
    "score_model",
    "silhouette_means",
    "silhouette_samples",
    "silhouette_score",
    "stratified_quotas",
]
