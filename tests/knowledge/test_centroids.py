"""The centroid view's input contract: sorted labels covering every class."""

import numpy as np
import pytest

from knowledge.matcher import _centroids


def test_centroids_are_the_unit_mean_direction_of_each_class() -> None:
    x = np.array([[3.0, 0.0], [0.0, 2.0], [0.0, -5.0], [0.0, -1.0]], dtype=np.float32)
    out = _centroids(x, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5], [0.0, -1.0]], atol=1e-6)


@pytest.mark.parametrize("labels", [[0, 1, 3], [1, 1, 2], [0, 2, 1], [0, 0, 1]])
def test_labels_that_skip_or_reorder_a_class_are_refused(labels: list[int]) -> None:
    x = np.ones((len(labels), 2), dtype=np.float32)
    with pytest.raises(ValueError, match="sorted"):
        _centroids(x, np.array(labels), 3)
